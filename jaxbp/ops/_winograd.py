"""Winograd's F(2x2, 3x3) convolution: 16 matmuls on transformed 4x4 tiles.

Lavin & Gray (2016), "Fast Algorithms for Convolutional Neural Networks".
Each 2x2 block of outputs reads a 4x4 tile ``d`` of the padded input; with
the constant matrices below and ``g`` one 3x3 kernel slice,

  y_tile = A^T [(G g G^T) ⊙ (B^T d B)] A,

exactly the cross-correlation (the identity of polynomial interpolation at
0, 1, -1 and ∞). Over channels the elementwise product becomes, for each of
the 16 tile entries (xi, nu), a matmul of the transformed tiles
``(batch * tiles, in)`` with the transformed kernel ``(in, out)``: 16
multiplies per 2x2 block of outputs and channel pair, against 4 * 9 = 36 for
the direct sum. Stride 1 and 3x3 kernels only; ``conv2d``'s backward derives
dx and dw from the same identity.
"""

import jax.numpy as jnp
import numpy as np

# G (4x3) interpolates the kernel; B^T and A^T act through _bt and _at.
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def fits(w_shape, strides, pads):
  """Whether F(2x2, 3x3) computes this geometry: a 3x3 kernel, stride 1 and
  paddings of at most 2 (so that dx, the correlation with the flipped
  kernel, has paddings 2 - p >= 0 and fits too)."""
  return (
      tuple(w_shape[:2]) == (3, 3)
      and tuple(strides) == (1, 1)
      and all(0 <= p <= 2 for pad in pads for p in pad)
  )


def _bt(d):
  """B^T (4x4) applied along a list of 4 rows (or columns) of tiles."""
  d0, d1, d2, d3 = d
  return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def _at(m):
  """A^T (2x4) applied along a list of 4."""
  m0, m1, m2, m3 = m
  return [m0 + m1 + m2, m1 - m2 - m3]


def _a(e):
  """A (4x2) applied along a list of 2: the transpose of _at."""
  e0, e1 = e
  return [e0, e0 + e1, e0 - e1, -e1]


def _grid(x_shape, pads):
  """(out height, out width, tile rows, tile columns)."""
  (top, bottom), (left, right) = pads
  oh = x_shape[1] + top + bottom - 2
  ow = x_shape[2] + left + right - 2
  return oh, ow, -(-oh // 2), -(-ow // 2)


def input_tiles(x, pads):
  """The 16 entries of B^T d B over all tiles, each ``(batch*tiles, in)``,
  in row-major (xi, nu) order.

  Each entry is its own array: stacked into one, XLA:CPU writes them an
  order of magnitude slower (8x8x256 at batch 128: 50 vs 5 ms).
  """
  _, _, th, tw = _grid(x.shape, pads)
  (top, _), (left, _) = pads
  h, w = x.shape[1:3]
  cfg = ((0, 0), (top, 2 * th + 2 - h - top), (left, 2 * tw + 2 - w - left))
  xp = jnp.pad(x, (*cfg, (0, 0)))
  rows = _bt([xp[:, r : r + 2 * th : 2] for r in range(4)])
  return [
      t.reshape(-1, x.shape[3])
      for row in rows
      for t in _bt([row[:, :, c : c + 2 * tw : 2] for c in range(4)])
  ]


def output_tiles(dy, x_shape, pads):
  """The 16 entries of A dy_tile A^T over all tiles (dy zero-padded to
  whole tiles), each ``(batch*tiles, out)``, in (xi, nu) order."""
  oh, ow, th, tw = _grid(x_shape, pads)
  dyp = jnp.pad(dy, ((0, 0), (0, 2 * th - oh), (0, 2 * tw - ow), (0, 0)))
  rows = _a([dyp[:, r::2] for r in range(2)])
  return [
      t.reshape(-1, dy.shape[3])
      for row in rows
      for t in _a([row[:, :, c::2] for c in range(2)])
  ]


def kernel_tiles(w):
  """G g G^T for every channel pair: ``(16, in, out)``, (xi, nu) order."""
  g = jnp.asarray(G, w.dtype)
  return jnp.einsum("ai,ijco,bj->abco", g, w, g).reshape(16, *w.shape[2:])


def conv(x, w, strides, pads):
  """y = A^T [U ⊙ V] A per tile, U = G g G^T, V = B^T d B: the forward."""
  del strides  # 1: checked by fits().
  n = x.shape[0]
  oh, ow, th, tw = _grid(x.shape, pads)
  u = kernel_tiles(w)
  m = [
      jnp.matmul(v, u[k]).reshape(n, th, tw, -1)
      for k, v in enumerate(input_tiles(x, pads))
  ]
  cols = [_at([m[4 * i + j] for i in range(4)]) for j in range(4)]
  y = jnp.stack([jnp.stack(_at([c[a] for c in cols])) for a in range(2)])
  # y[a, b] holds outputs (2p + a, 2q + b): interleave the four phases.
  y = y.transpose(2, 3, 0, 4, 1, 5).reshape(n, 2 * th, 2 * tw, -1)
  return y[:, :oh, :ow]


def kernel_grad(x, dy, w_shape, strides, pads):
  r"""dw through the transposes of the forward's three linear maps.

  The forward is :math:`w \mapsto U = G w G^\top`, then :math:`M_k = V_k
  U_k` per tile entry :math:`k` (``(batch * tiles, in) @ (in, out)``, with
  :math:`V = B^\top d B` fixed by ``x``), then :math:`y_{\text{tile}} =
  A^\top M_{\text{tile}} A`. Transposing each in reverse order,

  .. math::
    \bar{M}_{\text{tile}} = A\, \bar{y}_{\text{tile}}\, A^\top, \qquad
    \bar{U}_k = V_k^\top \bar{M}_k, \qquad
    \bar{w} = G^\top \bar{U} G,

  the middle one :func:`~jaxbp.ops.linear`'s :math:`\bar{W} = X^\top
  \bar{Y}` summed over the tiles and the batch; :math:`\bar{y}` is padded
  with zeros to whole tiles (the outputs past its edge were cropped).
  """
  del strides  # 1: checked by fits().
  v, e = input_tiles(x, pads), output_tiles(dy, x.shape, pads)
  du = jnp.stack([jnp.matmul(a.T, b) for a, b in zip(v, e, strict=True)])
  g = jnp.asarray(G, dy.dtype)
  return jnp.einsum("ai,abco,bj->ijco", g, du.reshape(4, 4, *w_shape[2:]), g)


def input_grad(dy, w, x_shape, strides, pads):
  """dx: the correlation of dy, padded by 2 - p, with the kernel flipped in
  space and in/out swapped, itself a stride-1 3x3 F(2x2, 3x3) forward."""
  (top, bottom), (left, right) = pads
  dpads = ((2 - top, 2 - bottom), (2 - left, 2 - right))
  del x_shape  # Padded by 2 - p, dy's correlation has x's size.
  return conv(dy, jnp.flip(w, (0, 1)).swapaxes(2, 3), strides, dpads)
