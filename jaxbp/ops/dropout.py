"""Inverted dropout whose only residual is the keep mask."""

import functools

import jax
import jax.numpy as jnp

from jaxbp.ops import _checks


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def dropout(x: jax.Array, key: jax.Array, rate: float) -> jax.Array:
  r"""Zeroes each entry with probability ``rate``, scales the rest up.

  With :math:`m \sim \mathrm{Bernoulli}(1 - r)` drawn from ``key``,

  .. math::
    y = \frac{m \odot x}{1 - r},

  so :math:`\mathbb{E}[y] = x` and evaluation needs no rescaling. ``rate``
  is static and must lie in :math:`[0, 1)`; ``rate=0`` is the identity.

  Args:
    x: inputs of any shape.
    key: a PRNG key (``jax.random.key``); it gets no cotangent.
    rate: drop probability.
  """
  return _dropout_fwd(x, key, rate)[0]


def _dropout_fwd(x, key, rate):
  if not 0 <= rate < 1:
    raise ValueError(f"dropout: rate must be in [0, 1), got {rate}.")
  _checks.floating("dropout", x=x)
  _checks.prng_key("dropout", "key", key)
  if rate == 0:
    return x, None
  mask = jax.random.bernoulli(key, 1 - rate, jnp.shape(x))
  return jnp.where(mask, x * (1 / (1 - rate)), 0).astype(x.dtype), mask


def _dropout_bwd(rate, mask, dy):
  r"""The residual is the boolean keep mask :math:`m` (1 byte per entry).

  For a fixed mask dropout is elementwise and linear: :math:`y_i = m_i x_i /
  (1 - r)` gives :math:`\partial y_i / \partial x_j = \delta_{ij} m_i / (1 -
  r)`, so dropped entries get no cotangent and kept ones are scaled like the
  forward:

  .. math::
    \bar{x} = \frac{m \odot \bar{y}}{1 - r}.

  The backward must reuse the forward's mask (drawing a new one would
  differentiate another network); ``rate=0`` saves nothing and passes
  :math:`\bar{y}` through. The key gets ``None``.
  """
  if rate == 0:
    return dy, None
  return jnp.where(mask, dy * (1 / (1 - rate)), 0).astype(dy.dtype), None


dropout.defvjp(_dropout_fwd, _dropout_bwd)
