"""Max, average and global average pooling (NHWC) with hand-derived backwards."""

import functools

import jax
import jax.numpy as jnp

from jaxbp.ops import _checks, _pool_phases


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool2d(x, window=3, stride=2, padding=1):
  r"""Takes the maximum over each ``window x window`` patch, padding with −∞.

  .. math::
    y_{nhwc} = \max_{0 \le i, j < k} x_{p,\,n,\,sh+i,\,sw+j,\,c}.

  Args:
    x: inputs of shape ``(batch, height, width, channels)``.
    window: the side k of the square window, an int >= 1.
    stride: the step s between windows, an int >= 1.
    padding: the number p of −∞ rows and columns added on every side.

  Returns:
    Outputs of shape ``(batch, (height + 2p - k) // s + 1, ..., channels)``.
  """
  return _max_pool2d_fwd(x, window, stride, padding)[0]


def _max_pool2d_fwd(x, window, stride, padding):
  _check("max_pool2d", x, window, stride, padding)
  y = _pool_phases.reduce_window(
      x, -jnp.inf, jax.lax.max, window, stride, padding
  )
  return y, (_pool_phases.first_max(x, y, window, stride, padding), x.shape)


def _max_pool2d_bwd(window, stride, padding, res, dy):
  r"""Routes each output's cotangent to the input that was its maximum.

  With :math:`x_p` the padded input and :math:`(i^*, j^*)` the arg-max
  offset of window :math:`(h, w)`, the max is locally a selection,
  :math:`y_{nhwc} = x_{p,\,n,\,sh+i^*,\,sw+j^*,\,c}`: its derivative is 1 at
  that one entry and 0 at the others. The chain rule adds up the windows
  that selected an entry (overlapping ones, stride < window, may select the
  same), then the padding is cropped:

  .. math::
    \bar{x}_{p,\,n,\,sh+i,\,sw+j,\,c} \mathrel{+}= \bar{y}_{nhwc} \;
    \text{for the first } (i, j) \text{ with } x_{p,\,n,\,sh+i,\,sw+j,\,c}
    = y_{nhwc}.

  That is col2im (as in :func:`~jaxbp.ops.conv2d`'s backward) of a patch
  cotangent that holds :math:`\bar{y}` at the arg-max offset and 0 at the
  other :math:`k^2 - 1`.

  Tie rule: among equal maxima the first in row-major window order (i, then
  j) takes the whole cotangent, as autodiff of ``lax.reduce_window`` does
  (its ``select_and_scatter`` with ``>=`` keeps the earliest). The forward
  keeps only the index k = i * window + j of that first maximum, in a small
  integer array; the routed cotangents are accumulated with pads and
  reshapes, not a scatter.
  """
  first, x_shape = res
  zero = jnp.zeros((), dy.dtype)
  offsets = [(i, j) for i in range(window) for j in range(window)]
  parts = [
      (i, j, jnp.where(first == k, dy, zero))
      for k, (i, j) in enumerate(offsets)
  ]
  return (_pool_phases.col2im(parts, x_shape, window, stride, padding),)


max_pool2d.defvjp(_max_pool2d_fwd, _max_pool2d_bwd)


def _max_pool_reference(x, window=3, stride=2, padding=1):
  """``lax.reduce_window`` with ``lax.max``: what autodiff differentiates."""
  _check("max_pool2d", x, window, stride, padding)
  return _pool_phases.reduce_window(
      x, -jnp.inf, jax.lax.max, window, stride, padding
  )


max_pool2d.reference = _max_pool_reference


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def avg_pool2d(x, window=2, stride=2, padding=0):
  r"""Averages each ``window x window`` patch of the zero-padded input.

  .. math::
    y_{nhwc} = \frac{1}{k^2} \textstyle\sum_{0 \le i, j < k}
    x_{p,\,n,\,sh+i,\,sw+j,\,c},

  dividing by the full window, padding included (PyTorch's
  ``count_include_pad=True``). Arguments as for :func:`max_pool2d`.
  """
  return _avg_pool2d_fwd(x, window, stride, padding)[0]


def _avg_pool2d_fwd(x, window, stride, padding):
  _check("avg_pool2d", x, window, stride, padding)
  y = _pool_phases.reduce_window(x, 0.0, jax.lax.add, window, stride, padding)
  return y / window**2, x.shape


def _avg_pool2d_bwd(window, stride, padding, x_shape, dy):
  r"""Spreads each output's cotangent evenly over its window.

  Each :math:`y_{nhwc}` is :math:`1/k^2` times a sum of :math:`k^2` entries
  of the padded input, so :math:`\partial y_{nhwc} / \partial
  x_{p,\,n,\,sh+i,\,sw+j,\,c} = 1/k^2` for every offset; the chain rule adds
  up the windows that cover an entry (col2im of a constant patch cotangent),
  then the padding is cropped:

  .. math::
    \bar{x}_{p,\,n,\,sh+i,\,sw+j,\,c} \mathrel{+}= \bar{y}_{nhwc} / k^2
    \quad \text{for every } 0 \le i, j < k.

  Padded entries count in the divisor, so near the border the cotangents of
  the real inputs sum to less than :math:`\bar{y}`.
  """
  g = dy / window**2
  parts = [(i, j, g) for i in range(window) for j in range(window)]
  return (_pool_phases.col2im(parts, x_shape, window, stride, padding),)


avg_pool2d.defvjp(_avg_pool2d_fwd, _avg_pool2d_bwd)


@jax.custom_vjp
def global_avg_pool(x):
  r"""Averages over height and width: NHWC → NC.

  .. math::
    y_{nc} = \frac{1}{HW} \textstyle\sum_{hw} x_{nhwc}.
  """
  return _global_avg_pool_fwd(x)[0]


def _global_avg_pool_fwd(x):
  _checks.floating("global_avg_pool", x=x)
  _checks.rank("global_avg_pool", "x", x, ndim=4)
  return jnp.mean(x, (1, 2)), x.shape


def _global_avg_pool_bwd(x_shape, dy):
  r"""Copies each cotangent, scaled, over height and width.

  :math:`\partial y_{nc} / \partial x_{nhwc} = 1 / (HW)` for every
  :math:`(h, w)`, so the transpose of the mean is a scaled copy (the
  broadcast of :func:`~jaxbp.ops.expand`):

  .. math:: \bar{x}_{nhwc} = \bar{y}_{nc} / (HW).
  """
  h, w = x_shape[1:3]
  return (jnp.broadcast_to((dy / (h * w))[:, None, None, :], x_shape),)


global_avg_pool.defvjp(_global_avg_pool_fwd, _global_avg_pool_bwd)


def _check(op, x, window, stride, padding):
  _checks.floating(op, x=x)
  _checks.rank(op, "x", x, ndim=4)
  for name, value, low in (
      ("window", window, 1),
      ("stride", stride, 1),
      ("padding", padding, 0),
  ):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
      raise ValueError(f"{op}: {name} must be an int >= {low}, got {value!r}.")
  h, w = x.shape[1:3]
  if min(h, w) + 2 * padding < window:
    raise ValueError(
        f"{op}: the {window}x{window} window is larger than the input of shape"
        f" {x.shape} padded by {padding} on each side."
    )
