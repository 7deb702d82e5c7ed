"""The table every op contract runs over: op, independent reference, arguments.

A row's reference comes from jax.nn, optax, lax or jnp, never from jaxbp, so
agreement is evidence rather than tautology. Add an op with one `Case(...)`.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbp import ops
from jaxbp.gradcheck import registry as r


@dataclasses.dataclass(frozen=True)
class Case:
  """An op with fixed hyperparameters, a reference, and small test arguments.

  `args(rng)` returns float64 numpy arrays (or int labels, PRNG keys); the
  contracts cast the float ones. `fn` and `reference` take the same args.
  """

  name: str
  op: Callable
  reference: Callable
  args: Callable[[np.random.Generator], tuple]
  static: dict[str, Any] = dataclasses.field(default_factory=dict)

  def build(self, seed: int = 0, dtype=None) -> list:
    args = self.args(np.random.default_rng(seed))
    return [
        jnp.asarray(a, dtype)
        if dtype is not None
        and jnp.issubdtype(jnp.result_type(a), jnp.floating)
        else a
        for a in args
    ]

  def fn(self, *args):
    return self.op(*args, **self.static)

  def ref(self, *args):
    return self.reference(*args, **self.static)

  def __str__(self) -> str:
    return self.name


# Ops whose statistics run in float32 for bf16/f16 inputs.
STATISTICS_OPS = (
    ops.softmax,
    ops.log_softmax,
    ops.cross_entropy,
    ops.softmax_cross_entropy,
    ops.batch_norm,
    ops.layer_norm,
)


def _bn(x, gamma, beta, eps):
  axes = tuple(range(x.ndim - 1))
  mean, var = jnp.mean(x, axes), jnp.var(x, axes)
  return (x - mean) * jax.lax.rsqrt(var + eps) * gamma + beta


def _ln(x, gamma, beta, eps):
  mean, var = jnp.mean(x, -1, keepdims=True), jnp.var(x, -1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps) * gamma + beta


def _dropout(x, key, rate):
  keep = jax.random.bernoulli(key, 1 - rate, x.shape)
  return jnp.where(keep, x / (1 - rate), 0)


def _conv(x, w, b, stride, padding):
  pads = ((padding, padding),) * 2 if isinstance(padding, int) else padding
  y = jax.lax.conv_general_dilated(
      x, w, (stride, stride), pads, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  return y + b


def _pool(x, init, op, window, stride, padding):
  pads = ((0, 0), (padding, padding), (padding, padding), (0, 0))
  dims, strides = (1, window, window, 1), (1, stride, stride, 1)
  return jax.lax.reduce_window(x, init, op, dims, strides, pads)


def _distinct(g, *shape):
  """Values 0.05 apart in random order: no max-pool ties, even in bf16 or
  under finite differences."""
  n = int(np.prod(shape))
  return g.permutation(np.linspace(-3, 3, n)).reshape(shape)


CASES = [
    Case(
        "linear",
        ops.linear,
        lambda x, w, b: jnp.dot(x, w) + b,
        lambda g: (r.normal(g, 5, 6), r.normal(g, 6, 3), r.normal(g, 3)),
    ),
    Case(
        "linear_3d",
        ops.linear,
        lambda x, w, b: jnp.dot(x, w) + b,
        lambda g: (r.normal(g, 2, 3, 4), r.normal(g, 4, 3), r.normal(g, 3)),
    ),
    Case("relu", ops.relu, jax.nn.relu, lambda g: (r.off_kink(g, 4, 6),)),
    Case(
        "leaky_relu",
        ops.leaky_relu,
        jax.nn.leaky_relu,
        lambda g: (r.off_kink(g, 4, 6),),
        {"negative_slope": 0.2},
    ),
    Case(
        "elu",
        ops.elu,
        jax.nn.elu,
        lambda g: (r.off_kink(g, 4, 6),),
        {"alpha": 0.7},
    ),
    Case("tanh", ops.tanh, jnp.tanh, lambda g: (r.normal(g, 4, 6),)),
    Case(
        "sigmoid", ops.sigmoid, jax.nn.sigmoid, lambda g: (r.normal(g, 4, 6),)
    ),
    Case(
        "softmax", ops.softmax, jax.nn.softmax, lambda g: (r.normal(g, 4, 6),)
    ),
    Case(
        "softmax_axis0",
        ops.softmax,
        jax.nn.softmax,
        lambda g: (r.normal(g, 4, 6),),
        {"axis": 0},
    ),
    Case(
        "log_softmax",
        ops.log_softmax,
        jax.nn.log_softmax,
        lambda g: (r.normal(g, 4, 6),),
    ),
    Case(
        "cross_entropy",
        ops.cross_entropy,
        lambda p, t: -jnp.mean(jnp.sum(jax.scipy.special.xlogy(t, p), -1)),
        lambda g: (r.simplex(g, 5, 4), r.simplex(g, 5, 4)),
    ),
    Case(
        "softmax_cross_entropy_int",
        ops.softmax_cross_entropy,
        lambda z, y: jnp.mean(
            optax.softmax_cross_entropy_with_integer_labels(z, y)
        ),
        lambda g: (r.normal(g, 5, 4), r.labels(g, 5, 4)),
    ),
    Case(
        "softmax_cross_entropy_soft",
        ops.softmax_cross_entropy,
        lambda z, t: jnp.mean(optax.softmax_cross_entropy(z, t)),
        lambda g: (r.normal(g, 5, 4), r.simplex(g, 5, 4)),
    ),
    Case(
        "batch_norm",
        ops.batch_norm,
        _bn,
        lambda g: (r.normal(g, 3, 2, 2, 4), r.positive(g, 4), r.normal(g, 4)),
        {"eps": 1e-5},
    ),
    Case(
        "layer_norm",
        ops.layer_norm,
        _ln,
        lambda g: (r.normal(g, 3, 6), r.positive(g, 6), r.normal(g, 6)),
        {"eps": 1e-5},
    ),
    Case(
        "divide",
        ops.divide,
        jnp.divide,
        lambda g: (r.normal(g, 3, 4), r.positive(g, 1, 4)),
    ),
    Case(
        "normalize",
        ops.normalize,
        lambda x: x / jnp.sum(x, -1, keepdims=True),
        lambda g: (r.positive(g, 3, 4),),
    ),
    Case(
        "expand",
        ops.expand,
        lambda x, n: jnp.repeat(x[..., None], n, -1),
        lambda g: (r.normal(g, 3, 4),),
        {"n": 3},
    ),
    Case(
        "dropout",
        ops.dropout,
        _dropout,
        lambda g: (r.normal(g, 4, 6), r.key(g)),
        {"rate": 0.5},
    ),
    Case(
        "conv2d",
        ops.conv2d,
        _conv,
        lambda g: (
            r.normal(g, 2, 5, 5, 3),
            r.normal(g, 3, 3, 3, 4),
            r.normal(g, 4),
        ),
        {"stride": 1, "padding": "SAME"},
    ),
    Case(
        "conv2d_stride2_valid",
        ops.conv2d,
        _conv,
        lambda g: (
            r.normal(g, 2, 6, 5, 2),
            r.normal(g, 3, 3, 2, 3),
            r.normal(g, 3),
        ),
        {"stride": 2, "padding": "VALID"},
    ),
    Case(
        "max_pool2d",
        ops.max_pool2d,
        lambda x, window, stride, padding: _pool(
            x, -jnp.inf, jax.lax.max, window, stride, padding
        ),
        lambda g: (_distinct(g, 2, 5, 6, 3),),
        {"window": 3, "stride": 2, "padding": 1},
    ),
    Case(
        "avg_pool2d",
        ops.avg_pool2d,
        lambda x, window, stride, padding: _pool(
            x, 0.0, jax.lax.add, window, stride, padding
        )
        / window**2,
        lambda g: (r.normal(g, 2, 5, 6, 3),),
        {"window": 2, "stride": 2, "padding": 1},
    ),
    Case(
        "global_avg_pool",
        ops.global_avg_pool,
        lambda x: jnp.mean(x, (1, 2)),
        lambda g: (r.normal(g, 2, 3, 4, 5),),
    ),
]
