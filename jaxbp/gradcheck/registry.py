"""The ops `python -m jaxbp.gradcheck` checks; one `register(...)` line each."""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxbp import ops


@dataclasses.dataclass(frozen=True)
class Case:
  """One registry row: an op, a builder of its arguments, its hyperparameters."""

  name: str
  op: Callable
  args: Callable[[np.random.Generator], tuple]
  static: dict[str, Any]

  def build(self, seed: int = 0) -> tuple:
    return self.args(np.random.default_rng(seed))

  @property
  def fn(self) -> Callable:
    return functools.partial(self.op, **self.static)

  @property
  def plain(self) -> Callable:
    return functools.partial(ops.plain(self.op), **self.static)


CASES: list[Case] = []


def register(name: str, op: Callable, args: Callable, **static: Any) -> None:
  """Adds a row: ``register("relu", ops.relu, lambda rng: (normal(rng, 4),))``."""
  CASES.append(Case(name, op, args, static))


# Argument builders for registry rows; float64 numpy, cast by the caller.
def normal(rng, *shape):
  return rng.standard_normal(shape)


def off_kink(rng, *shape):
  """Normal samples at least 0.1 from 0, so finite differences never straddle
  the kink of relu, leaky_relu or elu."""
  x = rng.standard_normal(shape)
  return np.where(x >= 0, x + 0.1, x - 0.1)


def positive(rng, *shape):
  return rng.uniform(0.5, 2.0, shape)


def simplex(rng, *shape):
  """Rows that are probability distributions with no entry near 0."""
  p = rng.uniform(0.2, 1.0, shape)
  return p / p.sum(-1, keepdims=True)


def labels(rng, n, num_classes):
  return rng.integers(0, num_classes, n)


def key(rng):
  return jax.random.key(int(rng.integers(2**31)))


register(
    "linear",
    ops.linear,
    lambda r: (normal(r, 200, 256), normal(r, 256, 100) / 16, normal(r, 100)),
)
register("relu", ops.relu, lambda r: (off_kink(r, 128, 512),))
register(
    "leaky_relu",
    ops.leaky_relu,
    lambda r: (off_kink(r, 128, 512),),
    negative_slope=0.1,
)
register("elu", ops.elu, lambda r: (off_kink(r, 128, 512),), alpha=1.0)
register("tanh", ops.tanh, lambda r: (normal(r, 128, 512),))
register("sigmoid", ops.sigmoid, lambda r: (normal(r, 128, 512),))
register("softmax", ops.softmax, lambda r: (normal(r, 128, 100),))
register("log_softmax", ops.log_softmax, lambda r: (normal(r, 128, 100),))
register(
    "cross_entropy",
    ops.cross_entropy,
    lambda r: (simplex(r, 200, 10), simplex(r, 200, 10)),
)
register(
    "softmax_cross_entropy",
    ops.softmax_cross_entropy,
    lambda r: (normal(r, 200, 10), labels(r, 200, 10)),
)
register(
    "softmax_cross_entropy (soft)",
    ops.softmax_cross_entropy,
    lambda r: (normal(r, 200, 10), simplex(r, 200, 10)),
)
register(
    "batch_norm",
    ops.batch_norm,
    lambda r: (normal(r, 32, 8, 8, 16), positive(r, 16), normal(r, 16)),
)
register(
    "layer_norm",
    ops.layer_norm,
    lambda r: (normal(r, 128, 256), positive(r, 256), normal(r, 256)),
)
register(
    "divide", ops.divide, lambda r: (normal(r, 64, 32), positive(r, 1, 32))
)
register("normalize", ops.normalize, lambda r: (positive(r, 64, 32),))
register("expand", ops.expand, lambda r: (normal(r, 64, 32),), n=4)
register(
    "dropout", ops.dropout, lambda r: (normal(r, 128, 512), key(r)), rate=0.5
)
register(
    "conv2d",
    ops.conv2d,
    lambda r: (
        normal(r, 8, 8, 8, 16),
        normal(r, 3, 3, 16, 32) / 12,
        normal(r, 32),
    ),
)
register(
    "conv2d (2x2 map)",
    ops.conv2d,
    lambda r: (
        normal(r, 8, 2, 2, 64),
        normal(r, 3, 3, 64, 64) / 24,
        normal(r, 64),
    ),
)
register(
    "max_pool2d",
    ops.max_pool2d,
    lambda r: (
        r.permutation(np.linspace(-3, 3, 8 * 8 * 8 * 16)).reshape(8, 8, 8, 16),
    ),
)
register("avg_pool2d", ops.avg_pool2d, lambda r: (normal(r, 8, 8, 8, 16),))
register(
    "global_avg_pool", ops.global_avg_pool, lambda r: (normal(r, 8, 4, 4, 16),)
)
