"""Flax NNX layers that own parameters and running statistics and call ops."""

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn import dtypes, initializers

from jaxbp import ops

VJPS = ("manual", "autodiff")

default_kernel_init = initializers.lecun_normal()
default_bias_init = initializers.zeros_init()


def check_vjp(vjp):
  """Raises a ValueError unless ``vjp`` names a backward mode."""
  if vjp not in VJPS:
    raise ValueError(
        "vjp must be 'manual' (hand-written backward rules) or 'autodiff'"
        f" (JAX autodiff of the same forward), got {vjp!r}."
    )


def select(op, vjp):
  """Returns ``op`` for ``'manual'``, its plain forward for ``'autodiff'``.

  Both take the same arguments, so a layer calls ``select(op, self.vjp)(...)``
  and ``model.set_attributes(vjp='autodiff')`` switches a whole model.
  """
  check_vjp(vjp)
  return op if vjp == "manual" else ops.plain(op)


# Activations and pooling carry no state: functions with a `vjp` switch.
def relu(x, *, vjp="manual"):
  return select(ops.relu, vjp)(x)


def leaky_relu(x, negative_slope=0.01, *, vjp="manual"):
  return select(ops.leaky_relu, vjp)(x, negative_slope)


def elu(x, alpha=1.0, *, vjp="manual"):
  return select(ops.elu, vjp)(x, alpha)


def tanh(x, *, vjp="manual"):
  return select(ops.tanh, vjp)(x)


def sigmoid(x, *, vjp="manual"):
  return select(ops.sigmoid, vjp)(x)


ACTIVATIONS = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "tanh": tanh,
    "sigmoid": sigmoid,
}


def max_pool2d(x, window=3, stride=2, padding=1, *, vjp="manual"):
  return select(ops.max_pool2d, vjp)(x, window, stride, padding)


def avg_pool2d(x, window=2, stride=2, padding=0, *, vjp="manual"):
  return select(ops.avg_pool2d, vjp)(x, window, stride, padding)


def global_avg_pool(x, *, vjp="manual"):
  return select(ops.global_avg_pool, vjp)(x)


class Linear(nnx.Module):
  """``y = x @ kernel + bias``; the twin of ``nnx.Linear`` (same init, names).

  ``dtype`` is the compute dtype (e.g. ``jnp.bfloat16``): inputs and
  parameters are cast to it for the op, the parameters stay ``param_dtype``.
  ``None`` promotes the input and parameter dtypes, as ``nnx.Linear`` does.
  """

  def __init__(
      self,
      in_features,
      out_features,
      *,
      vjp="manual",
      dtype=None,
      param_dtype=jnp.float32,
      kernel_init=default_kernel_init,
      bias_init=default_bias_init,
      rngs,
  ):
    check_vjp(vjp)
    shape = (in_features, out_features)
    self.kernel = nnx.Param(kernel_init(rngs.params(), shape, param_dtype))
    self.bias = nnx.Param(
        bias_init(rngs.params(), (out_features,), param_dtype)
    )
    self.in_features, self.out_features = in_features, out_features
    self.vjp, self.dtype = vjp, dtype

  def __call__(self, x):
    x, w, b = dtypes.promote_dtype(
        (x, self.kernel[...], self.bias[...]), dtype=self.dtype
    )
    return select(ops.linear, self.vjp)(x, w, b)


class Conv(nnx.Module):
  """2-D convolution, NHWC inputs, HWIO ``kernel``; twin of ``nnx.Conv``.

  ``stride`` and ``padding`` (``'SAME'``, ``'VALID'`` or an int) are those of
  ``ops.conv2d``; ``dtype`` is the compute dtype, as in :class:`Linear`.
  """

  def __init__(
      self,
      in_features,
      out_features,
      kernel_size=3,
      *,
      stride=1,
      padding="SAME",
      vjp="manual",
      dtype=None,
      param_dtype=jnp.float32,
      kernel_init=default_kernel_init,
      bias_init=default_bias_init,
      rngs,
  ):
    check_vjp(vjp)
    kh, kw = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    shape = (kh, kw, in_features, out_features)
    self.kernel = nnx.Param(kernel_init(rngs.params(), shape, param_dtype))
    self.bias = nnx.Param(
        bias_init(rngs.params(), (out_features,), param_dtype)
    )
    self.in_features, self.out_features = in_features, out_features
    self.stride, self.padding = stride, padding
    self.vjp, self.dtype = vjp, dtype

  def __call__(self, x):
    x, w, b = dtypes.promote_dtype(
        (x, self.kernel[...], self.bias[...]), dtype=self.dtype
    )
    return select(ops.conv2d, self.vjp)(x, w, b, self.stride, self.padding)


class BatchNorm(nnx.Module):
  r"""Batch normalization over all axes but the last, with PyTorch's defaults.

  In ``model.train()`` mode it normalizes with the batch statistics through
  ``ops.batch_norm`` (biased variance, ``epsilon=1e-5``) and updates the
  running statistics outside the custom rule, on ``stop_gradient`` inputs, in
  PyTorch's convention (``momentum=0.1`` weighs the new batch):

  .. math::
    \mu_{run} \leftarrow (1 - m)\,\mu_{run} + m\,\mu_B, \qquad
    \sigma^2_{run} \leftarrow (1 - m)\,\sigma^2_{run}
      + m\,\tfrac{n}{n - 1}\sigma^2_B,

  with :math:`n` the number of values per channel. In ``model.eval()`` mode
  (``use_running_average=True``) it normalizes with the running statistics.
  Like a fresh PyTorch module it starts in training mode.

  Intended differences from ``nnx.BatchNorm``: ``momentum`` is PyTorch's
  (``nnx.BatchNorm(momentum=1 - m)`` is the twin), and the running variance
  takes the unbiased batch variance as PyTorch does, where nnx takes the biased
  one. Statistics are computed in float32 (or wider) whatever ``dtype``.
  """

  def __init__(
      self,
      num_features,
      *,
      momentum=0.1,
      epsilon=1e-5,
      use_running_average=False,
      vjp="manual",
      dtype=None,
      param_dtype=jnp.float32,
      rngs=None,
  ):
    del rngs  # Parameters start at scale 1, bias 0; kept for the signature.
    check_vjp(vjp)
    shape = (num_features,)
    self.mean = nnx.BatchStat(jnp.zeros(shape, jnp.float32))
    self.var = nnx.BatchStat(jnp.ones(shape, jnp.float32))
    self.scale = nnx.Param(jnp.ones(shape, param_dtype))
    self.bias = nnx.Param(jnp.zeros(shape, param_dtype))
    self.num_features = num_features
    self.momentum, self.epsilon = momentum, epsilon
    self.use_running_average = use_running_average
    self.vjp, self.dtype = vjp, dtype

  def __call__(self, x, use_running_average=None):
    if use_running_average is None:
      use_running_average = self.use_running_average
    x, gamma, beta = dtypes.promote_dtype(
        (x, self.scale[...], self.bias[...]), dtype=self.dtype
    )
    if use_running_average:
      return self._normalize_running(x, gamma, beta)
    self._update_running(jax.lax.stop_gradient(x))
    return select(ops.batch_norm, self.vjp)(x, gamma, beta, self.epsilon)

  def _update_running(self, x):
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    axes = tuple(range(x.ndim - 1))
    n = x.size // x.shape[-1]
    mean = jnp.mean(x, axes)
    # PyTorch's unbiased variance (with one value per channel, where PyTorch
    # raises, the biased 0 instead).
    var = jnp.var(x, axes) * (n / max(n - 1, 1))
    m = self.momentum
    self.mean[...] = ((1 - m) * self.mean[...] + m * mean).astype(
        self.mean.dtype
    )
    self.var[...] = ((1 - m) * self.var[...] + m * var).astype(self.var.dtype)

  def _normalize_running(self, x, gamma, beta):
    # An affine map per channel: it needs no hand-written rule.
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    mul = jax.lax.rsqrt(self.var[...].astype(dtype) + self.epsilon)
    y = (x.astype(dtype) - self.mean[...].astype(dtype)) * (gamma * mul)
    return (y + beta).astype(x.dtype)


class LayerNorm(nnx.Module):
  """Normalizes the last axis with ``ops.layer_norm``; twin of nnx.LayerNorm.

  PyTorch's ``epsilon=1e-5`` is the default (``nnx.LayerNorm`` uses 1e-6).
  """

  def __init__(
      self,
      num_features,
      *,
      epsilon=1e-5,
      vjp="manual",
      dtype=None,
      param_dtype=jnp.float32,
      rngs=None,
  ):
    del rngs  # Parameters start at scale 1, bias 0; kept for the signature.
    check_vjp(vjp)
    self.scale = nnx.Param(jnp.ones((num_features,), param_dtype))
    self.bias = nnx.Param(jnp.zeros((num_features,), param_dtype))
    self.num_features, self.epsilon = num_features, epsilon
    self.vjp, self.dtype = vjp, dtype

  def __call__(self, x):
    x, gamma, beta = dtypes.promote_dtype(
        (x, self.scale[...], self.bias[...]), dtype=self.dtype
    )
    return select(ops.layer_norm, self.vjp)(x, gamma, beta, self.epsilon)


class Dropout(nnx.Module):
  """Inverted dropout through ``ops.dropout``; twin of ``nnx.Dropout``.

  Active in ``model.train()`` mode, the identity in ``model.eval()`` mode. Keys
  come from the ``rng_collection`` stream of ``rngs`` (or a ``rngs=`` key at
  call time), as in ``nnx.Dropout``.
  """

  def __init__(
      self,
      rate,
      *,
      deterministic=False,
      rng_collection="dropout",
      vjp="manual",
      rngs=None,
  ):
    check_vjp(vjp)
    if not 0.0 <= rate <= 1.0:
      raise ValueError(f"Dropout rate must be in [0, 1], got {rate}.")
    self.rate, self.deterministic = rate, deterministic
    self.rng_collection, self.vjp = rng_collection, vjp
    if isinstance(rngs, nnx.Rngs):
      self.rngs = rngs[rng_collection].fork()
    elif isinstance(rngs, nnx.RngStream):
      self.rngs = rngs.fork()
    else:
      self.rngs = nnx.data(None)

  def __call__(self, x, *, deterministic=None, rngs=None):
    if deterministic is None:
      deterministic = self.deterministic
    if deterministic or self.rate == 0.0:
      return x
    if self.rate == 1.0:
      return jnp.zeros_like(x)
    key = self._key(rngs)
    return select(ops.dropout, self.vjp)(x, key, self.rate)

  def _key(self, rngs):
    rngs = self.rngs if rngs is None else rngs
    if rngs is None:
      raise ValueError(
          "Dropout is in training mode but has no rngs: pass rngs=nnx.Rngs(...)"
          " to the constructor or the call, or call model.eval()."
      )
    if isinstance(rngs, nnx.Rngs):
      return rngs[self.rng_collection]()
    if isinstance(rngs, nnx.RngStream):
      return rngs()
    return rngs
