"""BatchNorm and LayerNorm: parameters and running statistics around the ops."""

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn import dtypes

from jaxbp import ops
from jaxbp.nn import functional


class BatchNorm(nnx.Module):
  r"""Batch normalization over all axes but the last, with PyTorch's defaults.

  In ``model.train()`` mode it normalizes with the batch statistics through
  ``ops.batch_norm_with_stats`` (biased variance, ``epsilon=1e-5``), which
  also returns them, and updates the running statistics from those, under
  ``stop_gradient``, in PyTorch's convention (``momentum=0.1`` weighs the new
  batch):

  .. math::
    \mu_{run} \leftarrow (1 - m)\,\mu_{run} + m\,\mu_B, \qquad
    \sigma^2_{run} \leftarrow (1 - m)\,\sigma^2_{run}
      + m\,\tfrac{n}{n - 1}\sigma^2_B,

  with :math:`n` the number of values per channel. In ``model.eval()`` mode
  (``use_running_average=True``) it normalizes with the running statistics.
  Like a fresh PyTorch module it starts in training mode.

  Intended differences from ``nnx.BatchNorm``: ``momentum`` is PyTorch's
  (``nnx.BatchNorm(momentum=1 - m)`` is the twin), and the running variance
  takes the unbiased batch variance as PyTorch does, where nnx takes the biased
  one. Statistics are computed in float32 (or wider) whatever ``dtype``.
  """

  def __init__(
      self,
      num_features,
      *,
      momentum=0.1,
      epsilon=1e-5,
      use_running_average=False,
      vjp="manual",
      dtype=None,
      param_dtype=jnp.float32,
      rngs=None,
  ):
    del rngs  # Parameters start at scale 1, bias 0; kept for the signature.
    functional.check_vjp_mode(vjp)
    shape = (num_features,)
    self.mean = nnx.BatchStat(jnp.zeros(shape, jnp.float32))
    self.var = nnx.BatchStat(jnp.ones(shape, jnp.float32))
    self.scale = nnx.Param(jnp.ones(shape, param_dtype))
    self.bias = nnx.Param(jnp.zeros(shape, param_dtype))
    self.num_features = num_features
    self.momentum, self.epsilon = momentum, epsilon
    self.use_running_average = use_running_average
    self.vjp, self.dtype = vjp, dtype

  def __call__(self, x, use_running_average=None, *, shift=None):
    r"""Normalizes ``x``, or ``x + shift`` given a per-channel ``shift``.

    ``shift`` (shape ``(C,)``) is for a bias the layer before left out, as
    :class:`~jaxbp.models.convnets.ConvBNReLU` does. With batch statistics
    it changes nothing but the mean: :math:`\mathrm{BN}(x + s) =
    \mathrm{BN}(x)` exactly, since :math:`x + s - \mu_{B}(x + s) = x -
    \mu_B(x)` and the variance is the same, so ``x`` itself is normalized,
    the running mean takes :math:`\mu_B(x) + s`, and the gradient of
    ``shift`` is exactly zero (it reaches only the running mean, under
    ``stop_gradient``). With running statistics ``x + shift`` is normalized.
    """
    if use_running_average is None:
      use_running_average = self.use_running_average
    x, gamma, beta = dtypes.promote_dtype(
        (x, self.scale[...], self.bias[...]), dtype=self.dtype
    )
    shift = _channel_shift(shift, x)
    if use_running_average:
      x = x if shift is None else x + shift.astype(x.dtype)
      return functional.emit(self, self._normalize_running(x, gamma, beta))
    bn = functional.select(ops.batch_norm_with_stats, self.vjp)
    y, mean, var = bn(x, gamma, beta, self.epsilon)
    mean = mean if shift is None else mean + shift.astype(mean.dtype)
    n = x.size // x.shape[-1]
    self._update_running(*jax.lax.stop_gradient((mean, var)), n)
    return functional.emit(self, y)

  def _update_running(self, mean, var, n):
    # PyTorch's unbiased variance (with one value per channel, where PyTorch
    # raises, the biased 0 instead).
    var = var * (n / max(n - 1, 1))
    m = self.momentum
    self.mean[...] = ((1 - m) * self.mean[...] + m * mean).astype(
        self.mean.dtype
    )
    self.var[...] = ((1 - m) * self.var[...] + m * var).astype(self.var.dtype)

  def _normalize_running(self, x, gamma, beta):
    # An affine map per channel: it needs no hand-written rule.
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    mul = jax.lax.rsqrt(self.var[...].astype(dtype) + self.epsilon)
    y = (x.astype(dtype) - self.mean[...].astype(dtype)) * (gamma * mul)
    return (y + beta).astype(x.dtype)


def _channel_shift(shift, x):
  if shift is None:
    return None
  shift = jnp.asarray(shift)
  if shift.shape != x.shape[-1:]:
    raise ValueError(
        f"BatchNorm: shift must have shape {x.shape[-1:]}, one per channel of"
        f" the input with shape {x.shape}, got shape {shift.shape}."
    )
  return shift


class LayerNorm(nnx.Module):
  """Normalizes the last axis with ``ops.layer_norm``; twin of nnx.LayerNorm.

  PyTorch's ``epsilon=1e-5`` is the default (``nnx.LayerNorm`` uses 1e-6).
  """

  def __init__(
      self,
      num_features,
      *,
      epsilon=1e-5,
      vjp="manual",
      dtype=None,
      param_dtype=jnp.float32,
      rngs=None,
  ):
    del rngs  # Parameters start at scale 1, bias 0; kept for the signature.
    functional.check_vjp_mode(vjp)
    self.scale = nnx.Param(jnp.ones((num_features,), param_dtype))
    self.bias = nnx.Param(jnp.zeros((num_features,), param_dtype))
    self.num_features, self.epsilon = num_features, epsilon
    self.vjp, self.dtype = vjp, dtype

  def __call__(self, x):
    x, gamma, beta = dtypes.promote_dtype(
        (x, self.scale[...], self.bias[...]), dtype=self.dtype
    )
    return functional.emit(
        self,
        functional.select(ops.layer_norm, self.vjp)(
            x, gamma, beta, self.epsilon
        ),
    )
