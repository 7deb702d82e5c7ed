"""Pooling windows as strided slices and their cotangents as pads: no gathers.

The padded input is cut into ``stride x stride`` phases by one reshape, so
every window offset (i, j) is a plain slice of one phase; the backward sums
the routed cotangents into those phases with pads and one reshape (col2im).
"""

import jax
import jax.numpy as jnp
import numpy as np


def first_max(x, y, window, stride, padding):
  """The index i * window + j of the first offset where x_p equals y."""
  offsets = list(windows(x, -jnp.inf, window, stride, padding))
  dtype = jnp.int8 if len(offsets) < 127 else jnp.int32
  first = jnp.zeros(y.shape, dtype)
  # Last to first, so that the earliest match is written last.
  for k, (_, _, xs) in reversed(list(enumerate(offsets))):
    first = jnp.where(xs == y, jnp.asarray(k, dtype), first)
  return first


def reduce_window(x, init, op, window, stride, padding):
  pad = (padding, padding)
  return jax.lax.reduce_window(
      x,
      # A concrete init lets lax see the max/add monoid (differentiable).
      np.asarray(init, x.dtype),
      op,
      (1, window, window, 1),
      (1, stride, stride, 1),
      ((0, 0), pad, pad, (0, 0)),
  )


def _phases(size, window, stride, padding):
  """Rows m of the phase grid: padded row s*m + a holds phase a, row m."""
  out = (size + 2 * padding - window) // stride + 1
  return out, out + (window - 1) // stride


def windows(x, fill, window, stride, padding):
  """Yields (i, j, x_p[:, s*h + i, s*w + j]) in row-major window order.

  The padded input is cut into s x s phases by a reshape, so window offset
  (i, j) is phase (i % s, j % s) shifted by (i // s, j // s): plain slices.
  """
  n, h, w, c = x.shape
  (oh, mh), (ow, mw) = (_phases(d, window, stride, padding) for d in (h, w))
  s, p = stride, padding
  # Negative high padding drops the rows no window reaches.
  cfg = ((0, 0, 0), (p, s * mh - h - p, 0), (p, s * mw - w - p, 0), (0, 0, 0))
  xp = jax.lax.pad(x, jnp.asarray(fill, x.dtype), cfg)
  xp = xp.reshape(n, mh, s, mw, s, c)
  for i in range(window):
    for j in range(window):
      u, v = i // s, j // s
      yield i, j, xp[:, u : u + oh, i % s, v : v + ow, j % s]


def col2im(parts, x_shape, window, stride, padding):
  """Sums cotangents (i, j, g) into x_p[:, s*h + i, s*w + j], crops padding."""
  n, h, w, c = x_shape
  (oh, mh), (ow, mw) = (_phases(d, window, stride, padding) for d in (h, w))
  s, p = stride, padding
  grid = {}
  for i, j, g in parts:
    u, v = i // s, j // s
    g = jnp.pad(g, ((0, 0), (u, mh - oh - u), (v, mw - ow - v), (0, 0)))
    key = (i % s, j % s)
    grid[key] = grid[key] + g if key in grid else g
  zero = jnp.zeros((n, mh, mw, c), parts[0][2].dtype)
  rows = [
      jnp.stack([grid.get((a, e), zero) for e in range(s)], 3) for a in range(s)
  ]
  dxp = jnp.stack(rows, 2).reshape(n, s * mh, s * mw, c)
  cfg = ((0, 0, 0), (-p, h + p - s * mh, 0), (-p, w + p - s * mw, 0), (0, 0, 0))
  return jax.lax.pad(dxp, jnp.zeros((), dxp.dtype), cfg)
