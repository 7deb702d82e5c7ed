"""Softmax and log-softmax along one axis, max-shifted, with output residuals."""

import functools

import jax
import jax.numpy as jnp

from jaxbp.ops import _checks, _dtypes


def _shifted(op, x, axis):
  """Returns `x - max(x)` along `axis` in the statistics dtype.

  A row may contain -inf (masked entries) as long as one entry is finite; the
  max is taken without gradient since the softmax is shift invariant.
  """
  _checks.floating(op, x=x)
  axis = _checks.axis(op, x, axis)
  z = x.astype(_dtypes.stat_dtype(x))
  return z - jax.lax.stop_gradient(jnp.max(z, axis, keepdims=True)), axis


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def softmax(x: jax.Array, axis: int = -1) -> jax.Array:
  r"""Softmax along ``axis``, :math:`y_i = e^{x_i} / \sum_j e^{x_j}`.

  Computed as :math:`e^{x - \max x}` so it never overflows; entries equal to
  :math:`-\infty` get probability 0 (a row must hold one finite entry).
  """
  return _softmax_fwd(x, axis)[0]


def _softmax_fwd(x, axis):
  z, axis = _shifted("softmax", x, axis)
  e = jnp.exp(z)
  y = (e / jnp.sum(e, axis, keepdims=True)).astype(x.dtype)
  return y, y


def _softmax_bwd(axis, y, dy):
  r"""The residual is the output; the Jacobian is
  :math:`\mathrm{diag}(y) - y y^\top`, so

  .. math::
    \bar{x} = y \odot (\bar{y} - \langle \bar{y}, y \rangle).

  Masked (:math:`-\infty`) entries have :math:`y = 0` and get a zero cotangent.
  """
  f = _dtypes.stat_dtype(y)
  y32, dy32 = y.astype(f), dy.astype(f)
  dx = y32 * (dy32 - jnp.sum(dy32 * y32, axis, keepdims=True))
  return (dx.astype(dy.dtype),)


softmax.defvjp(_softmax_fwd, _softmax_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def log_softmax(x: jax.Array, axis: int = -1) -> jax.Array:
  r"""Log-softmax along ``axis``, :math:`y_i = x_i - \log \sum_j e^{x_j}`.

  Max-shifted like :func:`softmax`; :math:`-\infty` entries stay
  :math:`-\infty` (a row must hold one finite entry).
  """
  return _log_softmax_fwd(x, axis)[0]


def _log_softmax_fwd(x, axis):
  z, axis = _shifted("log_softmax", x, axis)
  y = z - jnp.log(jnp.sum(jnp.exp(z), axis, keepdims=True))
  return y.astype(x.dtype), y


def _log_softmax_bwd(axis, y, dy):
  r"""The residual is the output (in the statistics dtype); with
  :math:`p = e^{y}` the softmax,

  .. math::
    \bar{x} = \bar{y} - p \textstyle\sum_j \bar{y}_j.

  Masked entries have :math:`p = 0` and pass :math:`\bar{y}` through, like
  autodiff.
  """
  dy32 = dy.astype(y.dtype)
  dx = dy32 - jnp.exp(y) * jnp.sum(dy32, axis, keepdims=True)
  return (dx.astype(dy.dtype),)


log_softmax.defvjp(_log_softmax_fwd, _log_softmax_bwd)
