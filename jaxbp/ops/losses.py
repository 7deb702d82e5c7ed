"""Cross-entropy losses: on probabilities (the seeds') and fused on logits."""

import math

import jax
import jax.numpy as jnp

from jaxbp.ops import _checks, _dtypes


@jax.custom_vjp
def cross_entropy(probs: jax.Array, targets: jax.Array) -> jax.Array:
  r"""Mean cross-entropy of probabilities against one-hot or soft targets.

  With :math:`N` the number of samples (the product of the leading axes),

  .. math::
    L = -\frac{1}{N} \sum_n \sum_c t_{nc} \log p_{nc},

  where :math:`0 \log 0 := 0` (``xlogy``): a class with zero target weight
  adds nothing even where its probability is 0. A zero probability on a
  class with positive target weight gives :math:`L = +\infty`, as the math
  says; feed logits to :func:`softmax_cross_entropy` to avoid that.

  Args:
    probs: probabilities of shape ``(..., C)``.
    targets: target distributions of the same shape.

  Returns:
    The scalar loss in the dtype of ``probs``.
  """
  return _cross_entropy_fwd(probs, targets)[0]


def _cross_entropy_fwd(probs, targets):
  _checks.floating("cross_entropy", probs=probs, targets=targets)
  _checks.rank("cross_entropy", "probs", probs, min_ndim=1)
  _checks.same_shape("cross_entropy", probs=probs, targets=targets)
  f = _dtypes.stat_dtype(probs)
  p, t = probs.astype(f), targets.astype(f)
  n = math.prod(probs.shape[:-1])
  loss = -jnp.sum(jax.scipy.special.xlogy(t, p)) / n
  return loss.astype(probs.dtype), (probs, targets)


def _cross_entropy_bwd(res, dl):
  r"""The residuals are the inputs; :math:`\bar{L}` (``dl``) is the scalar
  cotangent of the loss, 1 under ``jax.grad``.

  Each term of :math:`L = -\frac{1}{N} \sum_n \sum_c t_{nc} \log p_{nc}`
  holds one :math:`p_{nc}`, so :math:`\partial L / \partial p_{nc} =
  -t_{nc} / (N p_{nc})` and :math:`\partial L / \partial t_{nc} = -\log p_{nc}
  / N`. With the same :math:`0 \log 0 := 0` guard as the forward
  (:math:`\bar{p} = 0` wherever :math:`t = 0`):

  .. math::
    \bar{p} = -\frac{\bar{L}}{N} \frac{t}{p}, \qquad
    \bar{t} = -\frac{\bar{L}}{N} \log p.

  Chained through a softmax :math:`p = \mathrm{softmax}(z)` (see
  :func:`~jaxbp.ops.softmax`), :math:`\bar{z} = p \odot (\bar{p} - \langle
  \bar{p}, p \rangle) = \frac{\bar{L}}{N} (p \sum_c t_c - t)`, the fused rule
  of :func:`softmax_cross_entropy`, without its division by :math:`p`.
  """
  probs, targets = res
  f = _dtypes.stat_dtype(probs)
  p, t = probs.astype(f), targets.astype(f)
  scale = -dl.astype(f) / math.prod(probs.shape[:-1])
  # Dividing by 1 where t == 0 keeps the unused branch (and its derivative)
  # finite when p == 0 there too.
  dp = jnp.where(t == 0, 0, scale * t / jnp.where(t == 0, 1, p))
  dt = scale * jnp.log(p)
  return dp.astype(probs.dtype), dt.astype(targets.dtype)


cross_entropy.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)


@jax.custom_vjp
def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  r"""Mean softmax cross-entropy of logits against integer or soft labels.

  With :math:`\ell = \log\mathrm{softmax}(z)` computed max-shifted (stable for
  any finite logits) and :math:`N` the number of samples,

  .. math::
    L = -\frac{1}{N} \sum_n \sum_c t_{nc}\, \ell_{nc},

  where :math:`t` is ``one_hot(labels)`` for integer labels. Equals the mean of
  ``optax.softmax_cross_entropy`` (``..._with_integer_labels``).

  Args:
    logits: unnormalized scores of shape ``(..., C)``.
    labels: integer class indices of shape ``(...)``, or one-hot/soft labels
      of shape ``(..., C)``.

  Returns:
    The scalar loss in the dtype of ``logits``.
  """
  return _softmax_cross_entropy_fwd(logits, labels)[0]


def _softmax_cross_entropy_fwd(logits, labels):
  op = "softmax_cross_entropy"
  _checks.floating(op, logits=logits)
  _checks.rank(op, "logits", logits, min_ndim=1)
  lead = logits.shape[:-1]
  if jnp.issubdtype(_checks.dtype_of(labels), jnp.integer):
    _checks.shape(
        op,
        "labels",
        labels,
        lead,
        f"one class index per row of logits {logits.shape}",
    )
  else:
    _checks.floating(op, labels=labels)
    _checks.shape(
        op, "labels", labels, logits.shape, "soft labels match the logits"
    )
  z = logits.astype(_dtypes.stat_dtype(logits))
  z = z - jnp.max(z, -1, keepdims=True)
  log_p = z - jnp.log(jnp.sum(jnp.exp(z), -1, keepdims=True))
  if jnp.issubdtype(labels.dtype, jnp.integer):
    picked = jnp.take_along_axis(log_p, labels[..., None], -1)
  else:
    picked = labels.astype(log_p.dtype) * log_p
  loss = -jnp.sum(picked) / math.prod(lead)
  return loss.astype(logits.dtype), (log_p, labels)


def _targets(labels, c, dtype):
  """Returns one-hot rows for integer labels, the labels themselves otherwise."""
  if jnp.issubdtype(labels.dtype, jnp.integer):
    return jax.nn.one_hot(labels, c, dtype=dtype)
  return labels.astype(dtype)


def _softmax_cross_entropy_bwd(res, dl):
  r"""The residuals are :math:`\ell` (in the statistics dtype) and the labels;
  :math:`\bar{L}` (``dl``) is the loss's scalar cotangent.

  With :math:`p = e^\ell` the softmax, :math:`\partial \ell_{nc} / \partial
  z_{nk} = \delta_{ck} - p_{nk}` (see :func:`~jaxbp.ops.log_softmax`), so

  .. math::
    \frac{\partial L}{\partial z_{nk}} = -\frac{1}{N} \sum_c t_{nc}
      (\delta_{ck} - p_{nk}) = \frac{1}{N} \Big(p_{nk} \sum_c t_{nc}
      - t_{nk}\Big),

  one fused step that never divides by :math:`p` (no :math:`\bar{p}` is
  formed, unlike :func:`cross_entropy` after a softmax). With
  :math:`\partial L / \partial t_{nc} = -\ell_{nc} / N`, in array form:

  .. math::
    \bar{z} = \frac{\bar{L}}{N} \big(p \textstyle\sum_c t_c - t\big), \qquad
    \bar{t} = -\frac{\bar{L}}{N} \ell.

  For one-hot labels :math:`\sum_c t_c = 1`, the familiar
  :math:`(p - t) / N`; integer labels get no cotangent.
  """
  log_p, labels = res
  scale = dl.astype(log_p.dtype) / math.prod(log_p.shape[:-1])
  p = jnp.exp(log_p)
  t = _targets(labels, log_p.shape[-1], log_p.dtype)
  if jnp.issubdtype(labels.dtype, jnp.integer):
    return (scale * (p - t)).astype(dl.dtype), None
  dz = scale * (p * jnp.sum(t, -1, keepdims=True) - t)
  return dz.astype(dl.dtype), (-scale * log_p).astype(labels.dtype)


softmax_cross_entropy.defvjp(
    _softmax_cross_entropy_fwd, _softmax_cross_entropy_bwd
)
