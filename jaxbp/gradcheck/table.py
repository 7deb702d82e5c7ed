"""The one op table: every op, its reference, arguments and benchmark shapes.

It feeds the op contracts in tests/ops, ``python -m jaxbp.gradcheck`` and
``benchmarks/ops.py``. Add an op (or a variant of one) with one ``Case``.
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import ops
from jaxbp.gradcheck import references as refs

Shapes = tuple[tuple[int, ...], ...]


# Argument samplers, `sampler(rng, shape)`; float64 numpy, cast by the caller.
def normal(rng, shape):
  return rng.standard_normal(shape)


def off_kink(rng, shape):
  """Normal samples at least 0.1 from 0, so finite differences never straddle
  the kink of relu, leaky_relu or elu."""
  x = rng.standard_normal(shape)
  return np.where(x >= 0, x + 0.1, x - 0.1)


def positive(rng, shape):
  return rng.uniform(0.5, 2.0, shape)


def simplex(rng, shape):
  """Rows that are probability distributions with no entry near 0."""
  p = rng.uniform(0.2, 1.0, shape)
  return p / p.sum(-1, keepdims=True)


def labels(rng, shape):
  """Integer labels for logits of ``shape``: one class per row."""
  return rng.integers(0, shape[-1], shape[:-1])


def key(rng, shape):
  del shape  # A PRNG key has the one shape.
  return jax.random.key(int(rng.integers(2**31)))


def distinct(rng, shape):
  """Values 0.05 apart (for small shapes) in random order: no max-pool ties,
  even in bf16 or under finite differences."""
  n = int(np.prod(shape))
  return rng.permutation(np.linspace(-3, 3, n)).reshape(shape)


@dataclasses.dataclass(frozen=True)
class Case:
  """An op with fixed hyperparameters, an independent reference and inputs.

  ``samplers[i](rng, shape)`` draws argument ``i``; ``shapes`` are the small
  test shapes, ``check`` those of ``python -m jaxbp.gradcheck`` (default: the
  test shapes), ``bench`` one shape tuple per benchmark row. ``op`` and
  ``reference`` take the same arguments, and ``static`` as keywords.
  """

  name: str
  op: Callable
  reference: Callable
  samplers: tuple[Callable, ...]
  shapes: Shapes
  static: dict[str, Any] = dataclasses.field(default_factory=dict)
  check: Shapes | None = None
  bench: tuple[Shapes, ...] = ()

  def build(self, seed: int = 0, dtype=None, shapes: Shapes | None = None):
    """Draws the arguments; float ones cast to ``dtype`` when given."""
    rng = np.random.default_rng(seed)
    shapes = self.shapes if shapes is None else shapes
    args = [
        s(rng, shape) for s, shape in zip(self.samplers, shapes, strict=True)
    ]
    if dtype is None:
      return args
    return [
        jnp.asarray(a, dtype)
        if jnp.issubdtype(jnp.result_type(a), jnp.floating)
        else a
        for a in args
    ]

  def fn(self, *args):
    return self.op(*args, **self.static)

  def ref(self, *args):
    return self.reference(*args, **self.static)

  @property
  def plain(self) -> Callable:
    """The op's own plain forward (what ``vjp='autodiff'`` differentiates)."""
    return functools.partial(ops.plain(self.op), **self.static)

  def __str__(self) -> str:
    return self.name


# Ops whose statistics run in float32 for bf16/f16 inputs.
STATISTICS_OPS = (
    ops.softmax,
    ops.log_softmax,
    ops.cross_entropy,
    ops.softmax_cross_entropy,
    ops.batch_norm,
    ops.batch_norm_with_stats,
    ops.layer_norm,
)

VGG_EARLY, VGG_LATE = (128, 32, 32, 64), (128, 4, 4, 512)
N, P, K = normal, positive, off_kink
CASES = [
    Case("linear", ops.linear, refs.linear, (N, N, N), ((5, 6), (6, 3), (3,)),
         check=((200, 256), (256, 100), (100,)),
         bench=(((200, 3072), (3072, 100), (100,)),
                ((200, 100), (100, 10), (10,)))),
    Case("linear_3d", ops.linear, refs.linear, (N, N, N),
         ((2, 3, 4), (4, 3), (3,))),
    Case("relu", ops.relu, jax.nn.relu, (K,), ((4, 6),),
         check=((128, 512),), bench=((VGG_EARLY,), (VGG_LATE,))),
    Case("leaky_relu", ops.leaky_relu, jax.nn.leaky_relu, (K,), ((4, 6),),
         {"negative_slope": 0.2}, check=((128, 512),), bench=((VGG_EARLY,),)),
    Case("elu", ops.elu, jax.nn.elu, (K,), ((4, 6),), {"alpha": 0.7},
         check=((128, 512),), bench=((VGG_EARLY,),)),
    Case("tanh", ops.tanh, jnp.tanh, (N,), ((4, 6),), check=((128, 512),),
         bench=(((200, 100),),)),
    Case("sigmoid", ops.sigmoid, jax.nn.sigmoid, (N,), ((4, 6),),
         check=((128, 512),), bench=(((200, 100),),)),
    Case("softmax", ops.softmax, jax.nn.softmax, (N,), ((4, 6),),
         check=((128, 100),), bench=(((200, 10),), ((128, 1000),))),
    Case("softmax_axis0", ops.softmax, jax.nn.softmax, (N,), ((4, 6),),
         {"axis": 0}),
    Case("log_softmax", ops.log_softmax, jax.nn.log_softmax, (N,), ((4, 6),),
         check=((128, 100),), bench=(((128, 1000),),)),
    Case("cross_entropy", ops.cross_entropy, refs.cross_entropy,
         (simplex, simplex), ((5, 4), (5, 4)), check=((200, 10), (200, 10)),
         bench=(((200, 10), (200, 10)),)),
    Case("softmax_cross_entropy_int", ops.softmax_cross_entropy,
         refs.softmax_cross_entropy, (N, labels), ((5, 4), (5, 4)),
         check=((200, 10), (200, 10)),
         bench=(((200, 10), (200, 10)), ((128, 1000), (128, 1000)))),
    Case("softmax_cross_entropy_soft", ops.softmax_cross_entropy,
         refs.softmax_cross_entropy, (N, simplex), ((5, 4), (5, 4)),
         check=((200, 10), (200, 10))),
    Case("batch_norm", ops.batch_norm, refs.batch_norm, (N, P, N),
         ((3, 2, 2, 4), (4,), (4,)), {"eps": 1e-5},
         check=((32, 8, 8, 16), (16,), (16,)),
         bench=((VGG_EARLY, (64,), (64,)), (VGG_LATE, (512,), (512,)),
                ((200, 100), (100,), (100,)))),
    Case("batch_norm_with_stats", ops.batch_norm_with_stats,
         refs.batch_norm_with_stats, (N, P, N), ((3, 2, 2, 4), (4,), (4,)),
         {"eps": 1e-5}, check=((32, 8, 8, 16), (16,), (16,)),
         bench=((VGG_EARLY, (64,), (64,)),)),
    Case("layer_norm", ops.layer_norm, refs.layer_norm, (N, P, N),
         ((3, 6), (6,), (6,)), {"eps": 1e-5},
         check=((128, 256), (256,), (256,)),
         bench=(((200, 100), (100,), (100,)), ((4096, 512), (512,), (512,)))),
    Case("divide", ops.divide, jnp.divide, (N, P), ((3, 4), (1, 4)),
         check=((64, 32), (1, 32)), bench=(((200, 3072), (1, 3072)),)),
    Case("normalize", ops.normalize, refs.normalize, (P,), ((3, 4),),
         check=((64, 32),), bench=(((200, 3072),),)),
    Case("expand", ops.expand, refs.expand, (N,), ((3, 4),), {"n": 3},
         check=((64, 32),), bench=(((200, 100),),)),
    Case("dropout", ops.dropout, refs.dropout, (N, key), ((4, 6), ()),
         {"rate": 0.5}, check=((128, 512), ()), bench=((VGG_EARLY, ()),)),
    Case("conv2d", ops.conv2d, refs.conv2d, (N, N, N),
         ((2, 5, 5, 3), (3, 3, 3, 4), (4,)), {"stride": 1, "padding": "SAME"},
         check=((8, 8, 8, 16), (3, 3, 16, 32), (32,))),
    Case("conv2d_2x2_map", ops.conv2d, refs.conv2d, (N, N, N),
         ((2, 2, 2, 3), (3, 3, 3, 4), (4,)), {"stride": 1, "padding": "SAME"},
         check=((8, 2, 2, 64), (3, 3, 64, 64), (64,))),
    Case("conv2d_stride2_valid", ops.conv2d, refs.conv2d, (N, N, N),
         ((2, 6, 5, 2), (3, 3, 2, 3), (3,)), {"stride": 2, "padding": "VALID"}),
    Case("max_pool2d", ops.max_pool2d, refs.max_pool2d, (distinct,),
         ((2, 5, 6, 3),), {"window": 3, "stride": 2, "padding": 1},
         check=((8, 8, 8, 16),)),
    Case("avg_pool2d", ops.avg_pool2d, refs.avg_pool2d, (N,), ((2, 5, 6, 3),),
         {"window": 2, "stride": 2, "padding": 1}, check=((8, 8, 8, 16),)),
    Case("global_avg_pool", ops.global_avg_pool, refs.global_avg_pool, (N,),
         ((2, 3, 4, 5),), check=((8, 4, 4, 16),)),
]  # fmt: skip
