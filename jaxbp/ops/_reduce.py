"""Per-channel sums over all leading axes, in a shape every CPU path runs fast.

XLA:CPU with YNNPACK (``jaxbp._xla_flags``) hands reductions to YNNPACK too,
which is slow when few values are kept per row: summing ``(M, C)`` over M,
batch 128, 2 cores, ms: 32x32x64 30.1, 16x16x128 16.5, 8x8x256 3.3 (XLA's own
reduction: 1.3, 0.7, 0.5). Folding k rows into one, ``(M/k, k*C)`` summed over
the rows and then the k blocks, keeps at least ``_WIDE`` values per row: 1.1,
0.9, 0.5 under YNNPACK, and XLA's own is no slower (0.9, 0.8, 0.6). Only the
order of the float additions changes.
"""

import jax
import jax.numpy as jnp

_WIDE = 1024  # Values kept per row before the final sum over the k blocks.


def sum_leading(x: jax.Array, keepdims: bool = False) -> jax.Array:
  """``jnp.sum(x, axis=tuple(range(x.ndim - 1)))``, folded (module doc)."""
  if x.ndim < 2 or x.size == 0:  # Nothing to fold.
    return jnp.sum(x, tuple(range(x.ndim - 1)), keepdims=keepdims)
  c = x.shape[-1]
  m = x.size // c
  k = 1
  while k * c < _WIDE and m % (2 * k) == 0 and 2 * k <= m:
    k *= 2
  s = jnp.sum(x.reshape(m // k, k * c), 0).reshape(k, c).sum(0)
  return s.reshape((1,) * (x.ndim - 1) + (c,)) if keepdims else s


def mean_leading(x: jax.Array, keepdims: bool = False) -> jax.Array:
  m = max(x.size // max(x.shape[-1], 1), 1) if x.ndim > 1 else 1
  return sum_leading(x, keepdims) / jnp.asarray(m, x.dtype)
