"""2-D convolution (NHWC, HWIO) with a hand-derived backward, per-shape fast."""

import functools
import math

import jax
import jax.numpy as jnp

from jaxbp.ops import _checks

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


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def conv2d(x, w, b, stride=1, padding="SAME"):
  r"""Cross-correlates NHWC inputs with an HWIO kernel, then adds a bias.

  With :math:`x_p` the input zero-padded by ``padding`` and :math:`s` the
  stride,

  .. math::
    y_{nhwo} = b_o + \textstyle\sum_{ijc} x_{p,\,n,\,sh+i,\,sw+j,\,c}\,
    w_{ijco}.

  Gathering the windows into patches :math:`P_{nhw,(ijc)} = x_{p,\,n,\,sh+i,
  \,sw+j,\,c}` (im2col) makes this one matmul, :math:`y = P W + b` with
  :math:`W` the kernel flattened to ``(kh*kw*in, out)``. Which formulation
  runs (``lax.conv_general_dilated`` or patches + matmul, chosen separately
  for y, dx and dw) is decided at trace time by :func:`choose_impl`.

  Args:
    x: inputs of shape ``(batch, height, width, in)``.
    w: kernel of shape ``(kh, kw, in, out)``.
    b: bias of shape ``(out,)``, or ``None``.
    stride: an int >= 1 or a pair ``(sh, sw)``.
    padding: ``'SAME'``, ``'VALID'`` or an int >= 0 padded on every side.

  Returns:
    Outputs of shape ``(batch, out_height, out_width, out)``.
  """
  return _conv2d_fwd(x, w, b, stride, padding)[0]


def _conv2d_fwd(x, w, b, stride, padding, impl=None):
  strides, pads = _geometry(x, w, b, stride, padding)
  impl = impl or choose_impl(x.shape, w.shape, stride, padding)
  y = (_matmul_conv if impl[0] == "matmul" else _lax_conv)(x, w, strides, pads)
  if b is not None:
    y = y + b
  # An empty tuple (not None) marks a bias in the residual's tree structure.
  return y, (x, w, None if b is None else ())


def _conv2d_bwd(stride, padding, res, dy, impl=None):
  r"""The residuals are ``x`` and ``w``; :math:`x_p` is ``x`` padded,
  :math:`s` the stride, :math:`(h, w)` an output position.

  Index form: :math:`y_{nhwo} = b_o + \sum_{ijc} x_{p,\,n,\,sh+i,\,sw+j,\,c}
  \, w_{ijco}` is linear in each argument, so the chain rule gives

  .. math::
    \bar{w}_{ijco} = \sum_{nhw} x_{p,\,n,\,sh+i,\,sw+j,\,c}\, \bar{y}_{nhwo},
    \qquad
    \bar{x}_{p,\,n,\,a,\,e,\,c} = \sum_{\substack{h,w,i,j,o:\\ sh+i=a,\;
      sw+j=e}} \bar{y}_{nhwo}\, w_{ijco}, \qquad
    \bar{b}_o = \sum_{nhw} \bar{y}_{nhwo},

  and :math:`\bar{x}` is :math:`\bar{x}_p` with the padding cropped.

  Matrix form (im2col): with the patches :math:`P_{(nhw),(ijc)} =
  x_{p,\,n,\,sh+i,\,sw+j,\,c}` and :math:`W_{(ijc),o} = w_{ijco}` (``w``
  reshaped to ``(kh*kw*in, out)``), :math:`Y = P W + b` is
  :func:`~jaxbp.ops.linear`, so :math:`\bar{W} = P^\top \bar{Y}` and
  :math:`\bar{P} = \bar{Y} W^\top`. :math:`P` copies each entry of
  :math:`x_p` into up to :math:`k_h k_w` places; the transpose of that
  gather, col2im, adds every patch entry back where it came from:

  .. math::
    \bar{x}_{p,\,n,\,sh+i,\,sw+j,\,c} \mathrel{+}= \bar{P}_{(nhw),(ijc)},
    \qquad \bar{x} = \mathrm{crop}\big(\mathrm{col2im}(\bar{Y} W^\top)\big).

  Convolution form: in the sum for :math:`\bar{x}_p`, :math:`h = (a - i)/s`.
  So :math:`\bar{x}` is :math:`\bar{y}` dilated by the stride (:math:`s - 1`
  zeros between entries), padded by :math:`k - 1 - p_{\text{low}}` in
  front, correlated with the kernel flipped in space, in and out swapped
  (:math:`w_{k_h-1-i,\,k_w-1-j,\,o,\,c}`): the transposed convolution.
  :math:`\bar{w}` correlates :math:`x_p` with :math:`\bar{y}` dilated by the
  stride, summing over the batch. Which form runs for dx and for dw is
  chosen per shape at trace time.
  """
  x, w, bias_marker = res
  strides, pads = _geometry(x, w, None, stride, padding)
  impl = impl or choose_impl(x.shape, w.shape, stride, padding)
  dx_fn = _dx_col2im if impl[1] == "matmul" else _dx_lax
  dw_fn = _dw_matmul if impl[2] == "matmul" else _dw_lax
  dx = dx_fn(dy, w, x.shape, strides, pads).astype(x.dtype)
  dw = dw_fn(x, dy, w.shape, strides, pads).astype(w.dtype)
  db = None if bias_marker is None else jnp.sum(dy, (0, 1, 2)).astype(w.dtype)
  return dx, dw, db


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def _reference(x, w, b, stride=1, padding="SAME"):
  """The natural forward, ``lax.conv_general_dilated``: what autodiff sees."""
  y = _lax_conv(x, w, *_geometry(x, w, b, stride, padding))
  return y if b is None else y + b


conv2d.reference = _reference


def choose_impl(x_shape, w_shape, stride=1, padding="SAME", backend=None):
  """Returns the formulation, ``'lax'`` or ``'matmul'``, of ``(y, dx, dw)``.

  The choice is static: shapes, stride, padding and ``jax.default_backend()``
  (or ``backend``). GPUs and TPUs always get XLA's convolutions. On CPU,
  patches + matmul (and col2im for dx) run on small maps, where XLA:CPU's
  convolutions are orders of magnitude slower; dx also uses col2im for thin
  inputs, and dw uses one big matmul, once there are many patch rows.
  Thresholds were measured on the VGG layers at batch 128 and at batch 8-32
  (see ``benchmarks/conv.py``).
  """
  if (backend or jax.default_backend()) != "cpu":
    return ("lax", "lax", "lax")
  strides, pads = _strides_pads(*x_shape[1:3], w_shape, stride, padding)
  oh, ow = _out_size(x_shape, w_shape, strides, pads)
  pixels = oh * ow
  small = pixels <= _SMALL_MAP
  rows = x_shape[0] * pixels
  many = rows >= _MANY_ROWS and rows * math.prod(w_shape) >= _MANY_MACS
  thin = x_shape[3] < _THIN_CHANNELS
  pick = lambda matmul: "matmul" if matmul else "lax"
  return (pick(small), pick(small or (many and thin)), pick(small or many))


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def _conv2d_forced(x, w, b, stride, padding, impl):
  """``conv2d`` with the formulation forced: ``impl`` is a ``(y, dx, dw)``."""
  return _conv2d_fwd(x, w, b, stride, padding, impl)[0]


_conv2d_forced.defvjp(
    _conv2d_fwd,
    lambda stride, padding, impl, res, dy: _conv2d_bwd(
        stride, padding, res, dy, impl
    ),
)


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
  out = _out_size(x.shape, w.shape, strides, pads)
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


def _out_size(x_shape, w_shape, strides, pads):
  return tuple(
      (size + lo + hi - k) // s + 1
      for size, k, s, (lo, hi) in zip(
          x_shape[1:3], w_shape[:2], strides, pads, strict=True
      )
  )


def _strides_pads(h, w, w_shape, stride, padding):
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


def _geometry(x, w, b, stride, padding):
  """Validates the inputs; returns the strides and the explicit paddings."""
  _checks.floating("conv2d", x=x, w=w)
  _checks.rank("conv2d", "x", x, ndim=4)
  _checks.rank("conv2d", "w", w, ndim=4)
  kh, kw, c, o = w.shape
  if x.shape[3] != c:
    raise ValueError(
        f"conv2d: x has shape {x.shape} (NHWC) with {x.shape[3]} channels, but"
        f" w has shape {w.shape} (HWIO) expecting {c} input channels."
    )
  if b is not None:
    _checks.floating("conv2d", b=b)
    _checks.shape("conv2d", "b", b, (o,), "(out,) = w.shape[3:]")
  strides, pads = _strides_pads(
      x.shape[1], x.shape[2], w.shape, stride, padding
  )
  for size, k, (lo, hi) in zip(x.shape[1:3], (kh, kw), pads, strict=True):
    if size + lo + hi < k:
      raise ValueError(
          f"conv2d: the {kh}x{kw} kernel (w shape {w.shape}) is larger than"
          f" the padded input (x shape {x.shape}, paddings {pads})."
      )
  return strides, pads
