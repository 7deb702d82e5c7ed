"""Independent references: each op written with jax.nn, optax, lax or jnp.

None of them calls jaxbp, so agreement with an op is evidence rather than
tautology. Each takes the op's arguments and hyperparameters.
"""

import jax
import jax.numpy as jnp
import optax


def linear(x, w, b):
  return jnp.dot(x, w) + b


def cross_entropy(probs, targets):
  return -jnp.mean(jnp.sum(jax.scipy.special.xlogy(targets, probs), -1))


def softmax_cross_entropy(logits, labels):
  if jnp.issubdtype(labels.dtype, jnp.integer):
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  else:
    losses = optax.softmax_cross_entropy(logits, labels)
  return jnp.mean(losses)


def _axes(x):
  return tuple(range(x.ndim - 1))


def batch_norm(x, gamma, beta, eps=1e-5):
  mean, var = jnp.mean(x, _axes(x)), jnp.var(x, _axes(x))
  return (x - mean) * jax.lax.rsqrt(var + eps) * gamma + beta


def batch_norm_with_stats(x, gamma, beta, eps=1e-5):
  """``batch_norm``'s output with the batch mean and biased variance."""
  return (
      batch_norm(x, gamma, beta, eps),
      jnp.mean(x, _axes(x)),
      jnp.var(x, _axes(x)),
  )


def layer_norm(x, gamma, beta, eps=1e-5):
  mean, var = jnp.mean(x, -1, keepdims=True), jnp.var(x, -1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps) * gamma + beta


def normalize(x):
  return x / jnp.sum(x, -1, keepdims=True)


def expand(x, n):
  return jnp.repeat(x[..., None], n, -1)


def dropout(x, key, rate):
  keep = jax.random.bernoulli(key, 1 - rate, x.shape)
  return jnp.where(keep, x / (1 - rate), 0)


def conv2d(x, w, b, stride=1, padding="SAME"):
  """``lax.conv_general_dilated``, NHWC/HWIO; int padding on every side."""
  pads = ((padding, padding),) * 2 if isinstance(padding, int) else padding
  y = jax.lax.conv_general_dilated(
      x, w, (stride, stride), pads, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  return y if b is None else y + b


def _pool(x, init, op, window, stride, padding):
  pads = ((0, 0), (padding, padding), (padding, padding), (0, 0))
  dims, strides = (1, window, window, 1), (1, stride, stride, 1)
  return jax.lax.reduce_window(x, init, op, dims, strides, pads)


def max_pool2d(x, window=3, stride=2, padding=1):
  return _pool(x, -jnp.inf, jax.lax.max, window, stride, padding)


def avg_pool2d(x, window=2, stride=2, padding=0):
  return _pool(x, 0.0, jax.lax.add, window, stride, padding) / window**2


def global_avg_pool(x):
  return jnp.mean(x, (1, 2))
