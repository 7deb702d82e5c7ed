"""2-D convolution (NHWC, HWIO) with a hand-derived backward, per-shape fast."""

import functools

import jax

from jaxbp.ops import _checks, _conv_impl, _reduce


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def conv2d(x, w, b, stride=1, padding="SAME", impl=None):
  r"""Cross-correlates NHWC inputs with an HWIO kernel, then adds a bias.

  With :math:`x_p` the input zero-padded by ``padding`` and :math:`s` the
  stride,

  .. math::
    y_{nhwo} = b_o + \textstyle\sum_{ijc} x_{p,\,n,\,sh+i,\,sw+j,\,c}\,
    w_{ijco}.

  Gathering the windows into patches :math:`P_{nhw,(ijc)} = x_{p,\,n,\,sh+i,
  \,sw+j,\,c}` (im2col) makes this one matmul, :math:`y = P W + b` with
  :math:`W` the kernel flattened to ``(kh*kw*in, out)``. Which formulation
  runs (``lax.conv_general_dilated``, patches + matmul, a matmul per
  kernel tap or Winograd's F(2x2, 3x3), chosen separately for y, dx and dw)
  is decided at trace time by ``_conv_impl.choose_impl``.

  Args:
    x: inputs of shape ``(batch, height, width, in)``.
    w: kernel of shape ``(kh, kw, in, out)``.
    b: bias of shape ``(out,)``, or ``None``.
    stride: an int >= 1 or a pair ``(sh, sw)``.
    padding: ``'SAME'``, ``'VALID'`` or an int >= 0 padded on every side.
    impl: ``None`` (chosen per shape and backend), or a ``(y, dx, dw)``
      triple of ``'lax'`` / ``'matmul'`` / ``'taps'`` (one matmul per kernel
      tap) / ``'winograd'`` (F(2x2, 3x3): 3x3 kernels, stride 1, paddings of
      at most 2) forcing the formulations.

  Returns:
    Outputs of shape ``(batch, out_height, out_width, out)``.
  """
  return _conv2d_fwd(x, w, b, stride, padding, impl)[0]


def _conv2d_fwd(x, w, b, stride, padding, impl):
  strides, pads = _geometry(x, w, b, stride, padding)
  impl = _conv_impl.resolve(impl, x.shape, w.shape, stride, padding)
  y = _conv_impl.forward(impl[0], x, w, strides, pads)
  if b is not None:
    y = y + b
  # An empty tuple (not None) marks a bias in the residual's tree structure.
  return y, (x, w, None if b is None else ())


def _conv2d_bwd(stride, padding, impl, res, dy):
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

  and :math:`\bar{x}` is :math:`\bar{x}_p` with the padding cropped. How
  :math:`\bar{x}` and :math:`\bar{w}` are computed (matrix, convolution, tap
  or Winograd form) is derived in ``_conv2d_grads``.
  """
  x, w, bias_marker = res
  strides, pads = _geometry(x, w, None, stride, padding)
  impl = _conv_impl.resolve(impl, x.shape, w.shape, stride, padding)
  dx, dw = _conv2d_grads(impl, strides, pads, x, w, dy)
  dx, dw = dx.astype(x.dtype), dw.astype(w.dtype)
  db = None if bias_marker is None else _reduce.sum_leading(dy).astype(w.dtype)
  return dx, dw, db


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def _conv2d_grads(impl, strides, pads, x, w, dy):
  r"""Returns :math:`\bar{x}` and :math:`\bar{w}` by the formulations the
  resolved ``impl`` names for dx and dw; notation as in ``_conv2d_bwd``.

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
  stride, summing over the batch.

  Tap form: for each tap :math:`(i, j)`, let :math:`U_{ij}` be the output
  positions whose input :math:`(sh + i - p_t, sw + j - p_l)` lies inside
  ``x`` (the others read padding, which is zero), and :math:`X_{ij}` the
  ``(batch * |U|, in)`` matrix of those inputs. Then :math:`y = b +
  \sum_{ij} \mathrm{place}_{U_{ij}}(X_{ij} w_{ij})`, a sum of matmuls, so
  each term's transposes give

  .. math::
    \bar{w}_{ij} = X_{ij}^\top \bar{Y}_{U_{ij}}, \qquad
    \bar{x} = \textstyle\sum_{ij} \mathrm{place}^\top_{ij}\big(
      \bar{Y}_{U_{ij}} w_{ij}^\top\big),

  with :math:`\bar{Y}_{U}` the rows of :math:`\bar{y}` at :math:`U` and
  :math:`\mathrm{place}^\top_{ij}` adding each row back at its input
  position (a strided pad).

  Winograd form (3x3 kernels, stride 1): :math:`y = A^\top [U \odot V] A`
  per 2x2 output tile with :math:`U = G w G^\top`, a matmul :math:`M_k =
  V_k U_k` per tile entry; the transposes give :math:`\bar{w} = G^\top
  (V_k^\top A \bar{y} A^\top)_k G` (derived in ``_winograd.kernel_grad``),
  and :math:`\bar{x}`, the transposed convolution, is at stride 1 the same
  Winograd forward. Which form runs for y, dx and dw is chosen per shape at
  trace time.
  """
  dx = _conv_impl.input_grad(impl[1], dy, w, x.shape, strides, pads)
  dw = _conv_impl.kernel_grad(impl[2], x, dy, w.shape, strides, pads)
  return dx, dw


def _reference(x, w, b, stride=1, padding="SAME", impl=None):
  """The natural forward, ``lax.conv_general_dilated``: what autodiff sees."""
  del impl  # Autodiff differentiates one formulation.
  strides, pads = _geometry(x, w, b, stride, padding)
  y = _conv_impl.forward(_conv_impl.LAX, x, w, strides, pads)
  return y if b is None else y + b


conv2d.reference = _reference


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
  strides, pads = _conv_impl.strides_pads(
      x.shape[1], x.shape[2], w.shape, stride, padding
  )
  for size, k, (lo, hi) in zip(x.shape[1:3], (kh, kw), pads, strict=True):
    if size + lo + hi < k:
      raise ValueError(
          f"conv2d: the {kh}x{kw} kernel (w shape {w.shape}) is larger than"
          f" the padded input (x shape {x.shape}, paddings {pads})."
      )
  return strides, pads
