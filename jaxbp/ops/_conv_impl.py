"""How conv2d computes y, dx and dw: XLA's convolution, patches + matmul,
one matmul per kernel tap, or Winograd's F(2x2, 3x3) (``_winograd.py``).

On CPU the formulation is chosen per part and per shape (:func:`choose_impl`),
since XLA:CPU's convolutions are orders of magnitude slower on small maps;
GPUs and TPUs always get XLA's convolutions. ``ops.conv2d(..., impl=...)``
forces a choice (the tests run every path).
"""

import math

import jax
import jax.numpy as jnp

from jaxbp import _xla_flags
from jaxbp.ops import _winograd

_DN = ("NHWC", "HWIO", "NHWC")
# XLA:CPU convolutions are slow on maps of at most this many output pixels
# (measured at batch 128: 3x3 512->512 on 2x2 takes 2.1 s forward and 3.2 s
# for dx, against 15 ms each as patches + one matmul); above it they win.
_SMALL_MAP = 9
# On large problems (at least _MANY_ROWS patch rows, batch * output pixels,
# and _MANY_MACS multiply-adds), dx as col2im wins for thin inputs (3x3 3->64
# at 32x32, batch 128: 10 vs 42 ms) and dw as one patches^T @ dy matmul wins
# (32x32: 25 vs 46 ms; 16x16 64->128: 119 vs 146; 8x8 128->256: 78 vs 96).
# On smaller ones (4x4 at batch 128; 32x32 3->16 at batch 8) lax wins.
_MANY_ROWS = 8192
_MANY_MACS = 10**8
_THIN_CHANNELS = 16
# Under YNNPACK dots (jaxbp._xla_flags, set by default from jaxlib 0.10) XLA's
# convolutions win wherever the map is not small, dw included (one core,
# batch 128, ms, lax vs matmul: dw 16x16 64->128 46 vs 165, 8x8 256->256 74
# vs 196, 4x4 512->512 71 vs 132; batch 32: 16x16 10 vs 35); only thin inputs
# on many rows still want matmul (32x32 3->64: dx 11 vs 35, dw 24 vs 33).


# On small maps, one matmul per kernel tap over just the inputs it meets
# ('taps': y += x_region @ w[i, j], shifted into place) skips the products
# with padding that patches + matmul and XLA's convolution compute: on 2x2 a
# 3x3 kernel meets 16 (pixel, tap) pairs, not 36. Forward + backward, 3x3
# kernels, ms, lax / matmul / taps, under YNNPACK: batch 128: 2x2 512->512
# 2172 / 23.4 / 11.7, 3x3 256->256 15.6 / 15.5 / 11.4, 4x4 512->512 85.7 /
# 104 / 78.4, 4x4 256->512 40.1 / 51.7 / 37.2, but 6x6 128->128 13.8 / 27.5
# / 15.9; batch 32: 4x4 512->512 22.8 / 20.8 / 18.0, 3x3 256->256 4.4 / 4.1
# / 3.0. Without YNNPACK it replaces patches + matmul on the maps of at most
# _SMALL_MAP pixels only (4x4 was not measured there).
_TAPS_MAP = 16
# Under YNNPACK, dw as Winograd's F(2x2, 3x3) (_winograd.py: 16 matmuls over
# the tiles, 4/9 of the multiplies) beats XLA's convolution on 8x8 to 16x16
# maps (2-core AMD EPYC Zen 3, ms, lax / Winograd: batch 128 16x16 64->128
# 34.8 / 30.3, 16x16 128->128 72.1 / 58.8, 8x8 128->256 28.8 / 23.2, 8x8
# 256->256 59.4 / 44.3; batch 32 16x16 64->128 9.2 / 7.7, 8x8 128->256 7.4
# / 7.0, 8x8 256->256 14.5 / 11.9), ties on 32x32 (batch 32 64->64 19.3 /
# 19.5) and loses on small problems (batch 8 8x8 256->256 3.8 / 5.4, 16x16
# 64->128 2.1 / 2.3; 6x6 128->128 2.2 / 2.9 at batch 32). But its ~35
# kernels per layer cost XLA's compiler about 1.5-2 MiB each at its peak:
# compiling the VGG Adam step peaks at 689 instead of 529 MiB at batch 128,
# 679 instead of 577 at batch 32, where that compile is the process's peak
# RSS. So it is taken only on problems of at least _WINOGRAD_MACS
# multiply-adds (the VGG's three layers at batch 128, where the step takes
# 0.970x the time, in-process A/B, same temp buffers; at batch 32, 0.982x
# was not worth the 100 MiB). Its y and dx lost (8x8 256->256 y 62 / 67,
# dx 68 / 71; 16x16 64->128 y 39 / 56; 4x4 512->512 y 57 / 99): XLA:CPU
# fuses the output transform into the matmuls' epilogues, and one batched
# matmul over the 16 tiles (or stacking them) is slower still.
_WINOGRAD_PIXELS = (64, 256)
_WINOGRAD_MACS = 2 * 10**9


LAX, MATMUL, TAPS, WINOGRAD = "lax", "matmul", "taps", "winograd"
IMPLS = (LAX, MATMUL, TAPS, WINOGRAD)


def choose_impl(
    x_shape, w_shape, stride=1, padding="SAME", backend=None, ynn=None
):
  """Returns the formulation (``'lax'``, ``'matmul'``, ``'taps'``,
  ``'winograd'``) of ``(y, dx, dw)``.

  The choice is static: shapes, stride, padding, ``jax.default_backend()``
  (or ``backend``) and whether XLA:CPU runs dots through YNNPACK
  (``jaxbp._xla_flags.ynn_dots()``, or ``ynn``). GPUs and TPUs always get
  XLA's convolutions. On CPU, small maps (where XLA:CPU's convolutions can
  be orders of magnitude slower) run as one matmul per kernel tap over the
  inputs it meets (``'taps'``); dx and dw use patches + matmul (col2im for
  dx) for thin inputs once there are many patch rows, and without YNNPACK
  dw uses one big patches matmul on every large problem; with YNNPACK, dw
  on 8x8 to 16x16 maps with a lot of work (the VGG at batch 128) is
  Winograd's F(2x2, 3x3) (stride 1, 3x3 kernels). Thresholds were
  measured on the VGG layers at batch 128 and at batch 8-32 (see
  ``benchmarks/conv.py``).
  """
  if (backend or jax.default_backend()) != "cpu":
    return (LAX, LAX, LAX)
  if ynn is None:
    ynn = _xla_flags.ynn_dots()
  strides, pads = strides_pads(*x_shape[1:3], w_shape, stride, padding)
  oh, ow = out_size(x_shape, w_shape, strides, pads)
  pixels = oh * ow
  if pixels <= (_TAPS_MAP if ynn else _SMALL_MAP):
    return (TAPS, TAPS, TAPS)
  rows = x_shape[0] * pixels
  macs = rows * math.prod(w_shape)
  many = rows >= _MANY_ROWS and macs >= _MANY_MACS
  thin = x_shape[3] < _THIN_CHANNELS
  pick = lambda matmul: MATMUL if matmul else LAX
  dw = pick(many and (thin or not ynn))
  lo, hi = _WINOGRAD_PIXELS
  if (
      ynn
      and not thin
      and lo <= pixels <= hi
      and macs >= _WINOGRAD_MACS
      and _winograd.fits(w_shape, strides, pads)
  ):
    dw = WINOGRAD
  return (LAX, pick(many and thin), dw)


def resolve(impl, x_shape, w_shape, stride, padding):
  """Returns ``impl`` if it names a formulation of each part that fits the
  geometry, else raises; ``None`` becomes :func:`choose_impl`'s pick."""
  if impl is None:
    return choose_impl(x_shape, w_shape, stride, padding)
  if not (
      isinstance(impl, tuple)
      and len(impl) == 3
      and all(part in IMPLS for part in impl)
  ):
    raise ValueError(
        "conv2d: impl must be None or a (y, dx, dw) tuple of 'lax',"
        f" 'matmul', 'taps' and 'winograd', got {impl!r}."
    )
  strides, pads = strides_pads(*x_shape[1:3], w_shape, stride, padding)
  if WINOGRAD in impl and not _winograd.fits(w_shape, strides, pads):
    raise ValueError(
        f"conv2d: impl {impl!r} asks for Winograd's F(2x2, 3x3), which needs"
        " a 3x3 kernel, stride 1 and paddings of at most 2; got kernel"
        f" {w_shape[:2]}, strides {strides}, paddings {pads}. Use 'lax',"
        " 'matmul' or 'taps' there, or impl=None."
    )
  return impl


def forward(impl, x, w, strides, pads):
  """y without the bias: XLA's convolution, patches @ kernel, per tap or
  per Winograd tile entry."""
  fn = {
      LAX: _lax_conv,
      MATMUL: _matmul_conv,
      TAPS: _taps_conv,
      WINOGRAD: _winograd.conv,
  }[impl]
  return fn(x, w, strides, pads)


def input_grad(impl, dy, w, x_shape, strides, pads):
  """dx: the transposed convolution, col2im of dy @ kernel^T, per tap or
  as a Winograd forward."""
  fn = {
      LAX: _dx_lax,
      MATMUL: _dx_col2im,
      TAPS: _dx_taps,
      WINOGRAD: _winograd.input_grad,
  }[impl]
  return fn(dy, w, x_shape, strides, pads)


def kernel_grad(impl, x, dy, w_shape, strides, pads):
  """dw: a convolution over the batch, patches^T @ dy, per tap or per
  Winograd tile entry."""
  fn = {
      LAX: _dw_lax,
      MATMUL: _dw_matmul,
      TAPS: _dw_taps,
      WINOGRAD: _winograd.kernel_grad,
  }[impl]
  return fn(x, dy, w_shape, strides, pads)


def _lax_conv(x, w, strides, pads):
  return jax.lax.conv_general_dilated(
      x, w, strides, pads, dimension_numbers=_DN
  )


def _patches(x, kernel, strides, pads, out):
  """Returns (batch, oh, ow, kh*kw*in): window (i, j) at channel block i*kw+j."""
  xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  (kh, kw), (sh, sw), (oh, ow) = kernel, strides, out
  cols = [
      xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
      for i in range(kh)
      for j in range(kw)
  ]
  return jnp.concatenate(cols, axis=-1)


def _matmul_conv(x, w, strides, pads):
  out = out_size(x.shape, w.shape, strides, pads)
  p = _patches(x, w.shape[:2], strides, pads, out)
  return jnp.matmul(p, w.reshape(-1, w.shape[3]))


def _dx_col2im(dy, w, x_shape, strides, pads):
  kh, kw, c, _ = w.shape
  n, oh, ow, _ = dy.shape
  dp = jnp.matmul(dy, w.reshape(-1, w.shape[3]).T).reshape(n, oh, ow, kh, kw, c)
  hp, wp = (x_shape[1] + sum(pads[0]), x_shape[2] + sum(pads[1]))
  (sh, sw), zero = strides, jnp.zeros((), dy.dtype)
  dxp = 0
  for i in range(kh):
    for j in range(kw):
      dxp += jax.lax.pad(
          dp[:, :, :, i, j],
          zero,
          (
              (0, 0, 0),
              (i, hp - i - sh * (oh - 1) - 1, sh - 1),
              (j, wp - j - sw * (ow - 1) - 1, sw - 1),
              (0, 0, 0),
          ),
      )
  (top, _), (left, _) = pads
  return dxp[:, top : top + x_shape[1], left : left + x_shape[2]]


def _dx_lax(dy, w, x_shape, strides, pads):
  kh, kw = w.shape[:2]
  oh, ow = dy.shape[1:3]
  dpads = [
      (k - 1 - lo, size + lo - s * (o - 1) - 1)
      for k, (lo, _), size, s, o in zip(
          (kh, kw), pads, x_shape[1:3], strides, (oh, ow), strict=True
      )
  ]
  # The flipped kernel read as HWOI: in and out swap without a transpose.
  return jax.lax.conv_general_dilated(
      dy,
      jnp.flip(w, (0, 1)),
      (1, 1),
      dpads,
      lhs_dilation=strides,
      dimension_numbers=("NHWC", "HWOI", "NHWC"),
  )


def _dw_matmul(x, dy, w_shape, strides, pads):
  p = _patches(x, w_shape[:2], strides, pads, dy.shape[1:3])
  dw = jnp.matmul(p.reshape(-1, p.shape[3]).T, dy.reshape(-1, dy.shape[3]))
  return dw.reshape(w_shape)


def _dw_lax(x, dy, w_shape, strides, pads):
  wpads = [
      (lo, k + s * (o - 1) - size - lo)
      for k, (lo, _), size, s, o in zip(
          w_shape[:2], pads, x.shape[1:3], strides, dy.shape[1:3], strict=True
      )
  ]
  # Batch plays the contracted feature axis, x's channels the batch axis.
  return jax.lax.conv_general_dilated(
      x,
      dy,
      (1, 1),
      wpads,
      rhs_dilation=strides,
      dimension_numbers=("CHWN", "IHWO", "HWNC"),
  )


def _tap_regions(x_shape, w_shape, strides, pads, out):
  """Yields (i, j, rows, cols) for every tap that meets the input: rows =
  (u0, nu, a0), the outputs u0..u0+nu-1 read input rows a0, a0+s, ...
  (a = s*u + i - top); cols likewise."""
  (sh, sw), ((top, _), (left, _)) = strides, pads

  def span(k, size, s, lo, o):
    valid = [u for u in range(o) if 0 <= s * u + k - lo < size]
    return (valid[0], len(valid), s * valid[0] + k - lo) if valid else None

  for i in range(w_shape[0]):
    rows = span(i, x_shape[1], sh, top, out[0])
    for j in range(w_shape[1]):
      cols = span(j, x_shape[2], sw, left, out[1])
      if rows and cols:
        yield i, j, rows, cols


def _region(x, rows, cols, strides):
  """x[:, a0 : a0 + s*(nu-1) + 1 : s, b0 : ... : s]: the inputs a tap reads."""
  (_, nu, a0), (_, nv, b0), (sh, sw) = rows, cols, strides
  return x[
      :, a0 : a0 + sh * (nu - 1) + 1 : sh, b0 : b0 + sw * (nv - 1) + 1 : sw
  ]


def _taps_conv(x, w, strides, pads):
  oh, ow = out_size(x.shape, w.shape, strides, pads)
  # Zeros, not 0: where a large padding keeps every tap off the input.
  zero = jnp.zeros((), x.dtype)
  y = jnp.zeros((x.shape[0], oh, ow, w.shape[3]), jnp.result_type(x, w))
  for i, j, rows, cols in _tap_regions(
      x.shape, w.shape, strides, pads, (oh, ow)
  ):
    r = jnp.matmul(_region(x, rows, cols, strides), w[i, j])
    (u0, nu, _), (v0, nv, _) = rows, cols
    cfg = ((0, 0, 0), (u0, oh - u0 - nu, 0), (v0, ow - v0 - nv, 0), (0, 0, 0))
    y = y + jax.lax.pad(r, zero, cfg)
  return y


def _dx_taps(dy, w, x_shape, strides, pads):
  zero, dx = jnp.zeros((), dy.dtype), jnp.zeros(x_shape, dy.dtype)
  (sh, sw), (h, wd) = strides, x_shape[1:3]
  kw, c = w.shape[1:3]
  # Each tap's kernel cut from w flattened, not as the forward cuts it: a
  # slice the forward shares (CSE) is copied into a buffer of its own that
  # stays allocated from the forward to here; unshared, XLA fuses each into
  # its dot. VGG step temp buffers 88 -> 63 MB at batch 32, 191 -> 164 at
  # batch 128; peak RSS about 575 -> 560 and 715 -> 690 MiB; same time.
  rows_of = w.reshape(-1, w.shape[3])
  for i, j, rows, cols in _tap_regions(
      x_shape, w.shape, strides, pads, dy.shape[1:3]
  ):
    (u0, nu, a0), (v0, nv, b0) = rows, cols
    first = (i * kw + j) * c
    g = jnp.matmul(
        dy[:, u0 : u0 + nu, v0 : v0 + nv], rows_of[first : first + c].T
    )
    cfg = (
        (0, 0, 0),
        (a0, h - a0 - sh * (nu - 1) - 1, sh - 1),
        (b0, wd - b0 - sw * (nv - 1) - 1, sw - 1),
        (0, 0, 0),
    )
    dx = dx + jax.lax.pad(g, zero, cfg)
  return dx


def _dw_taps(x, dy, w_shape, strides, pads):
  c, o = w_shape[2:]
  dw = [[jnp.zeros((c, o), dy.dtype)] * w_shape[1] for _ in range(w_shape[0])]
  for i, j, rows, cols in _tap_regions(
      x.shape, w_shape, strides, pads, dy.shape[1:3]
  ):
    (u0, nu, _), (v0, nv, _) = rows, cols
    xs = _region(x, rows, cols, strides).reshape(-1, c)
    dw[i][j] = jnp.matmul(
        xs.T, dy[:, u0 : u0 + nu, v0 : v0 + nv].reshape(-1, o)
    )
  return jnp.stack([jnp.stack(row) for row in dw])


def out_size(x_shape, w_shape, strides, pads):
  return tuple(
      (size + lo + hi - k) // s + 1
      for size, k, s, (lo, hi) in zip(
          x_shape[1:3], w_shape[:2], strides, pads, strict=True
      )
  )


def strides_pads(h, w, w_shape, stride, padding):
  """Returns ((sh, sw), ((top, bottom), (left, right))), validating both."""
  if isinstance(stride, int):
    strides = (stride, stride)
  else:
    strides = tuple(stride) if isinstance(stride, tuple | list) else ()
  if len(strides) != 2 or not all(
      isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in strides
  ):
    raise ValueError(
        f"conv2d: stride must be an int >= 1 or a pair, got {stride!r}."
    )
  if isinstance(padding, str) and padding.upper() in ("SAME", "VALID"):
    pads = jax.lax.padtype_to_pads(
        (h, w), w_shape[:2], strides, padding.upper()
    )
    return strides, tuple(tuple(int(p) for p in pad) for pad in pads)
  if (
      isinstance(padding, int)
      and not isinstance(padding, bool)
      and padding >= 0
  ):
    return strides, ((padding, padding), (padding, padding))
  raise ValueError(
      "conv2d: padding must be 'SAME', 'VALID' or an int >= 0, got"
      f" {padding!r}."
  )
