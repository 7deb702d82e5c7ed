"""Softmax and log-softmax along one axis, max-shifted; backwards reuse exp."""

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
  r = 1 / jnp.sum(e, axis, keepdims=True)
  # Saving e and 1/s (not y = e/s) lets the backward scale its row sums (a
  # small array) before one elementwise pass, instead of XLA fusing the
  # reduction into that pass, which measured slower on CPU.
  return (e * r).astype(x.dtype), (e, r)


def _softmax_bwd(axis, res, dy):
  r"""The residuals are :math:`e = e^{x - \max x}` and :math:`r = 1 / \sum_j
  e_j` (in the statistics dtype), so :math:`y = e r`.

  Per row, :math:`y_i = e^{x_i} / \sum_k e^{x_k}` gives (quotient rule)
  :math:`\partial y_i / \partial x_j = y_i \delta_{ij} - y_i y_j`, the
  symmetric Jacobian :math:`J = \mathrm{diag}(y) - y y^\top`. The chain rule
  :math:`\bar{x}_j = \sum_i \bar{y}_i \, \partial y_i / \partial x_j
  = y_j \bar{y}_j - y_j \sum_i \bar{y}_i y_i` never needs :math:`J`:

  .. math::
    \bar{x} = J^\top \bar{y} = y \odot (\bar{y} - \langle \bar{y}, y \rangle)
      = e r \,(\bar{y} - r \langle \bar{y}, e \rangle).

  The entries of :math:`\bar{x}` sum to 0 along ``axis``, so the max shift
  (held fixed by ``stop_gradient``) would get no cotangent anyway. Masked
  (:math:`-\infty`) entries have :math:`e = 0` and get a zero cotangent.
  """
  e, r = res
  dy32 = dy.astype(e.dtype)
  dx = (e * r) * (dy32 - r * jnp.sum(dy32 * e, axis, keepdims=True))
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
  e = jnp.exp(z)
  s = jnp.sum(e, axis, keepdims=True)
  # The exponentials the forward needs anyway spare the backward a
  # transcendental; keeping the row sums apart lets the backward scale them
  # (a small array) before the one full-size pass.
  return (z - jnp.log(s)).astype(x.dtype), (e, s)


def _log_softmax_bwd(axis, res, dy):
  r"""The residuals are :math:`e = e^{x - \max x}` and its sums :math:`s`
  (in the statistics dtype), by-products of the forward.

  Per row, :math:`y_i = x_i - \log \sum_k e^{x_k}` gives
  :math:`\partial y_i / \partial x_j = \delta_{ij} - p_j` with the softmax
  :math:`p = e / s`, so :math:`\bar{x}_j = \sum_i \bar{y}_i (\delta_{ij} -
  p_j) = \bar{y}_j - p_j \sum_i \bar{y}_i`:

  .. math::
    \bar{x} = \bar{y} - p \textstyle\sum_j \bar{y}_j
      = \bar{y} - e \,\big(\textstyle\sum_j \bar{y}_j / s\big).

  Masked entries have :math:`e = 0` and pass :math:`\bar{y}` through, like
  autodiff.
  """
  e, s = res
  dy32 = dy.astype(e.dtype)
  dx = dy32 - e * (jnp.sum(dy32, axis, keepdims=True) / s)
  return (dx.astype(dy.dtype),)


log_softmax.defvjp(_log_softmax_fwd, _log_softmax_bwd)
