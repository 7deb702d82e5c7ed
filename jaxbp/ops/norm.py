"""Batch and layer normalization with single-pass hand-derived backwards."""

import functools

import jax
import jax.numpy as jnp

from jaxbp.ops import _checks, _dtypes, _reduce


def _check(op, x, gamma, beta, min_ndim):
  _checks.floating(op, x=x, gamma=gamma, beta=beta)
  _checks.rank(op, "x", x, min_ndim=min_ndim)
  x_shape = _checks.shape_of(x)
  for name, p in (("gamma", gamma), ("beta", beta)):
    _checks.shape(
        op, name, p, x_shape[-1:], f"one per channel of x with shape {x_shape}"
    )


def _normalize(x, axes, eps):
  """Returns x_hat, rstd, mean and the biased variance in the statistics
  dtype (float32 for bf16/f16); the last three keep the reduced axes."""
  z = x.astype(_dtypes.stat_dtype(x))
  if axes == tuple(range(x.ndim - 1)):  # Batch norm: per channel, folded.
    mean_of = lambda v: _reduce.mean_leading(v, keepdims=True)
  else:
    mean_of = lambda v: jnp.mean(v, axes, keepdims=True)
  mean = mean_of(z)
  # Two-pass variance: E[(x - mean)^2] stays accurate when |mean| >> std.
  var = mean_of(jnp.square(z - mean))
  rstd = jax.lax.rsqrt(var + eps)
  return (z - mean) * rstd, rstd, mean, var


def _scale_shift(x_hat, gamma, beta, dtype):
  return (gamma.astype(x_hat.dtype) * x_hat + beta).astype(dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_norm(
    x: jax.Array, gamma: jax.Array, beta: jax.Array, eps: float = 1e-5
) -> jax.Array:
  r"""Normalizes each channel over the batch, then scales and shifts it.

  With :math:`\mu, \sigma^2` the mean and biased variance over all axes but
  the last (training-mode statistics; running averages live in ``jaxbp.nn``),

  .. math::
    \hat{x} = (x - \mu) / \sqrt{\sigma^2 + \epsilon}, \qquad
    y = \gamma \hat{x} + \beta.

  Args:
    x: inputs of shape ``(..., C)`` with at least two axes.
    gamma: scale of shape ``(C,)``.
    beta: shift of shape ``(C,)``.
    eps: added to the variance.
  """
  return _batch_norm_fwd(x, gamma, beta, eps)[0]


def _batch_norm_fwd(x, gamma, beta, eps):
  _check("batch_norm", x, gamma, beta, min_ndim=2)
  x_hat, rstd, _, _ = _normalize(x, tuple(range(x.ndim - 1)), eps)
  y = _scale_shift(x_hat, gamma, beta, x.dtype)
  return y, (x_hat.astype(x.dtype), rstd, gamma)


def _batch_norm_bwd(eps, res, dy):
  r"""The residuals are ``x_hat``, ``rstd`` :math:`r = 1 / \sqrt{\sigma^2 +
  \epsilon}` and ``gamma``.

  Per channel, over its :math:`M` entries :math:`i` (all axes but the last):
  :math:`\mu = \frac{1}{M} \sum_i x_i`, :math:`\sigma^2 = \frac{1}{M}
  \sum_i (x_i - \mu)^2`, :math:`\hat{x}_i = (x_i - \mu) r`, :math:`y_i =
  \gamma \hat{x}_i + \beta`. So :math:`\bar\beta = \sum_i \bar{y}_i`,
  :math:`\bar\gamma = \sum_i \bar{y}_i \hat{x}_i` and :math:`\bar{\hat{x}}_i
  = \gamma \bar{y}_i =: g_i`. Each :math:`\hat{x}_i` reads :math:`x_i`
  directly and through :math:`\mu` and :math:`\sigma^2`; with
  :math:`\partial r / \partial \sigma^2 = -r^3 / 2`,

  .. math::
    \overline{\sigma^2} = -\frac{r^3}{2} \sum_i g_i (x_i - \mu)
      = -\frac{r^2}{2} \sum_i g_i \hat{x}_i, \qquad
    \bar\mu = -r \sum_i g_i - \overline{\sigma^2} \, \frac{2}{M}
      \sum_i (x_i - \mu) = -r \sum_i g_i,

  the last sum being 0. With :math:`\partial \mu / \partial x_i = 1 / M` and
  :math:`\partial \sigma^2 / \partial x_i = 2 (x_i - \mu) / M`,

  .. math::
    \bar{x}_i = r g_i + \overline{\sigma^2} \, \frac{2 (x_i - \mu)}{M}
      + \frac{\bar\mu}{M}
      = r \Big(g_i - \frac{1}{M} \sum_j g_j
      - \hat{x}_i \frac{1}{M} \sum_j g_j \hat{x}_j\Big).

  One :math:`\gamma` per channel gives :math:`\sum_j g_j = \gamma \bar\beta`
  and :math:`\sum_j g_j \hat{x}_j = \gamma \bar\gamma`: one elementwise pass
  over the two sums the parameters need anyway,

  .. math::
    \bar{x} = \gamma r \Big(\bar{y}
      - \frac{\bar\beta + \hat{x} \bar\gamma}{M}\Big).
  """
  del eps  # Used on the forward pass only.
  x_hat, rstd, gamma = res
  f = rstd.dtype
  dy32, x_hat32 = dy.astype(f), x_hat.astype(f)
  dbeta = _reduce.sum_leading(dy32)
  dgamma = _reduce.sum_leading(dy32 * x_hat32)
  m = dy.size // dy.shape[-1]
  dx = (gamma.astype(f) * rstd) * (dy32 - (dbeta + x_hat32 * dgamma) / m)
  return (
      dx.astype(dy.dtype),
      dgamma.astype(gamma.dtype),
      dbeta.astype(gamma.dtype),
  )


batch_norm.defvjp(_batch_norm_fwd, _batch_norm_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_norm_with_stats(
    x: jax.Array, gamma: jax.Array, beta: jax.Array, eps: float = 1e-5
) -> tuple[jax.Array, jax.Array, jax.Array]:
  r""":func:`batch_norm` that also returns the statistics it normalized with.

  Returns ``(y, mean, var)``: ``y`` as :func:`batch_norm` computes it, and
  the batch mean :math:`\mu` and biased variance :math:`\sigma^2` of each
  channel, of shape ``(C,)`` in the statistics dtype (float32 for bf16/f16
  inputs). ``jaxbp.nn.BatchNorm`` updates its running averages from them, so
  the statistics are computed once per step.

  Args:
    x: inputs of shape ``(..., C)`` with at least two axes.
    gamma: scale of shape ``(C,)``.
    beta: shift of shape ``(C,)``.
    eps: added to the variance.
  """
  return _batch_norm_with_stats_fwd(x, gamma, beta, eps)[0]


def _batch_norm_with_stats_fwd(x, gamma, beta, eps):
  _check("batch_norm_with_stats", x, gamma, beta, min_ndim=2)
  x_hat, rstd, mean, var = _normalize(x, tuple(range(x.ndim - 1)), eps)
  y = _scale_shift(x_hat, gamma, beta, x.dtype)
  res = (x_hat.astype(x.dtype), rstd, gamma)
  return (y, mean.reshape(-1), var.reshape(-1)), res


def _batch_norm_with_stats_bwd(eps, res, cts):
  r"""The cotangent of ``y`` flows back as in :func:`batch_norm`; those of
  the statistics add their own terms. With :math:`M` entries per channel,
  :math:`\partial \mu / \partial x_i = 1/M` and :math:`\partial \sigma^2 /
  \partial x_i = 2 (x_i - \mu) / M`, where :math:`x_i - \mu = \hat{x}_i
  \sqrt{\sigma^2+\epsilon}`, so

  .. math::
    \bar{x} = \bar{x}_{\text{batch\_norm}}(\bar{y})
      + \frac{1}{M}\Big(\bar\mu
      + 2\,\bar{\sigma}^2\,\hat{x}\sqrt{\sigma^2+\epsilon}\Big).

  :math:`\bar\gamma, \bar\beta` do not depend on the statistics'
  cotangents. Under ``stop_gradient`` (as ``jaxbp.nn`` uses them) both are
  zero and only the first term remains.
  """
  dy, dmean, dvar = cts
  dx, dgamma, dbeta = _batch_norm_bwd(eps, res, dy)
  x_hat, rstd, _ = res
  f = rstd.dtype
  m = dy.size // dy.shape[-1]
  extra = (dmean.astype(f) + 2 * dvar.astype(f) * x_hat.astype(f) / rstd) / m
  return (dx.astype(f) + extra).astype(dy.dtype), dgamma, dbeta


batch_norm_with_stats.defvjp(
    _batch_norm_with_stats_fwd, _batch_norm_with_stats_bwd
)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def layer_norm(
    x: jax.Array, gamma: jax.Array, beta: jax.Array, eps: float = 1e-5
) -> jax.Array:
  r"""Normalizes each sample over its last axis, then scales and shifts it.

  With :math:`\mu, \sigma^2` the mean and biased variance over the last axis,

  .. math::
    \hat{x} = (x - \mu) / \sqrt{\sigma^2 + \epsilon}, \qquad
    y = \gamma \hat{x} + \beta.

  Args:
    x: inputs of shape ``(..., C)``.
    gamma: scale of shape ``(C,)``.
    beta: shift of shape ``(C,)``.
    eps: added to the variance.
  """
  return _layer_norm_fwd(x, gamma, beta, eps)[0]


def _layer_norm_fwd(x, gamma, beta, eps):
  _check("layer_norm", x, gamma, beta, min_ndim=1)
  x_hat, rstd, _, _ = _normalize(x, -1, eps)
  y = _scale_shift(x_hat, gamma, beta, x.dtype)
  return y, (x_hat.astype(x.dtype), rstd, gamma)


def _layer_norm_bwd(eps, res, dy):
  r"""The residuals are ``x_hat``, ``rstd`` :math:`r = 1 / \sqrt{\sigma^2 +
  \epsilon}` and ``gamma``.

  The chain through :math:`\mu` and :math:`\sigma^2` is that of
  :func:`batch_norm`, taken per sample over its :math:`C` channels, with
  :math:`g = \gamma \bar{y} = \bar{\hat{x}}` and :math:`\langle\cdot\rangle`
  the mean over the last axis. Since :math:`\gamma_c` varies along that
  axis, it stays inside the means:

  .. math::
    \bar{x} = \frac{g - \langle g \rangle - \hat{x} \langle g \hat{x}
      \rangle}{\sqrt{\sigma^2+\epsilon}}, \quad
    \bar\gamma = \textstyle\sum \bar{y} \hat{x}, \quad
    \bar\beta = \textstyle\sum \bar{y},

  the last two summed over all axes but the last (every sample shares
  :math:`\gamma` and :math:`\beta`).
  """
  del eps  # Used on the forward pass only.
  x_hat, rstd, gamma = res
  f = rstd.dtype
  dy32, x_hat32 = dy.astype(f), x_hat.astype(f)
  g = gamma.astype(f) * dy32
  dx = rstd * (
      g
      - jnp.mean(g, -1, keepdims=True)
      - x_hat32 * jnp.mean(g * x_hat32, -1, keepdims=True)
  )
  dgamma = _reduce.sum_leading(dy32 * x_hat32)
  dbeta = _reduce.sum_leading(dy32)
  return (
      dx.astype(dy.dtype),
      dgamma.astype(gamma.dtype),
      dbeta.astype(gamma.dtype),
  )


layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)
