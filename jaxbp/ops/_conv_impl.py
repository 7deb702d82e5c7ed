"""How conv2d computes y, dx and dw: XLA's convolution or patches + matmul.

On CPU the formulation is chosen per part and per shape (:func:`choose_impl`),
since XLA:CPU's convolutions are orders of magnitude slower on small maps;
GPUs and TPUs always get XLA's convolutions. ``ops.conv2d(..., impl=...)``
forces a choice (the tests run every path).
"""

import math

import jax
import jax.numpy as jnp

from jaxbp import _xla_flags

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


LAX, MATMUL = "lax", "matmul"


def choose_impl(
    x_shape, w_shape, stride=1, padding="SAME", backend=None, ynn=None
):
  """Returns the formulation, ``'lax'`` or ``'matmul'``, of ``(y, dx, dw)``.

  The choice is static: shapes, stride, padding, ``jax.default_backend()``
  (or ``backend``) and whether XLA:CPU runs dots through YNNPACK
  (``jaxbp._xla_flags.ynn_dots()``, or ``ynn``). GPUs and TPUs always get
  XLA's convolutions. On CPU, patches + matmul (and col2im for dx) run on
  small maps, where XLA:CPU's convolutions are orders of magnitude slower; dx
  and dw also use them for thin inputs once there are many patch rows, and
  without YNNPACK dw uses one big matmul on every large problem. Thresholds
  were measured on the VGG layers at batch 128 and at batch 8-32 (see
  ``benchmarks/conv.py``).
  """
  if (backend or jax.default_backend()) != "cpu":
    return (LAX, LAX, LAX)
  if ynn is None:
    ynn = _xla_flags.ynn_dots()
  strides, pads = strides_pads(*x_shape[1:3], w_shape, stride, padding)
  oh, ow = out_size(x_shape, w_shape, strides, pads)
  pixels = oh * ow
  small = pixels <= _SMALL_MAP
  rows = x_shape[0] * pixels
  many = rows >= _MANY_ROWS and rows * math.prod(w_shape) >= _MANY_MACS
  thin = x_shape[3] < _THIN_CHANNELS
  pick = lambda matmul: MATMUL if matmul else LAX
  dw_matmul = many and (thin or not ynn)
  return (pick(small), pick(small or (many and thin)), pick(small or dw_matmul))


def resolve(impl, x_shape, w_shape, stride, padding):
  """Returns ``impl`` if it names a formulation of each part, else raises;
  ``None`` becomes :func:`choose_impl`'s pick."""
  if impl is None:
    return choose_impl(x_shape, w_shape, stride, padding)
  if not (
      isinstance(impl, tuple)
      and len(impl) == 3
      and all(part in (LAX, MATMUL) for part in impl)
  ):
    raise ValueError(
        "conv2d: impl must be None or a (y, dx, dw) tuple of 'lax' and"
        f" 'matmul', got {impl!r}."
    )
  return impl


def forward(impl, x, w, strides, pads):
  """y without the bias, as XLA's convolution or patches @ kernel."""
  return (_matmul_conv if impl == MATMUL else _lax_conv)(x, w, strides, pads)


def input_grad(impl, dy, w, x_shape, strides, pads):
  """dx, as the transposed convolution or col2im of dy @ kernel^T."""
  fn = _dx_col2im if impl == MATMUL else _dx_lax
  return fn(dy, w, x_shape, strides, pads)


def kernel_grad(impl, x, dy, w_shape, strides, pads):
  """dw, as a convolution over the batch or patches^T @ dy."""
  fn = _dw_matmul if impl == MATMUL else _dw_lax
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
