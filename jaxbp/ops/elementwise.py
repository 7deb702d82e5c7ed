"""The mini-autodiff (vugrad) ops: divide, normalize and expand."""

import functools

import jax
import jax.numpy as jnp

from jaxbp.ops import _checks


def _unbroadcast(g: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Sums `g` down to `shape`, undoing numpy broadcasting (the transpose)."""
  lead = tuple(range(g.ndim - len(shape)))
  kept = tuple(
      len(lead) + i
      for i, n in enumerate(shape)
      if n == 1 and g.shape[len(lead) + i] != 1
  )
  if kept:
    g = jnp.sum(g, kept, keepdims=True)
  return jnp.sum(g, lead) if lead else g


@jax.custom_vjp
def divide(x: jax.Array, y: jax.Array) -> jax.Array:
  r"""Elementwise :math:`z = x / y`, broadcasting like ``jnp.divide``."""
  return _divide_fwd(x, y)[0]


def _divide_fwd(x, y):
  _checks.floating("divide", x=x, y=y)
  _checks.broadcastable("divide", x=x, y=y)
  return jnp.divide(x, y), (x, y)


def _divide_bwd(res, dz):
  r"""The residuals are the inputs; each cotangent is summed back over the
  axes its input was broadcast along (:math:`\Sigma_x`, :math:`\Sigma_y`):

  .. math::
    \bar{x} = \Sigma_x(\bar{z} / y), \qquad
    \bar{y} = -\Sigma_y(\bar{z}\, x) / y^2,

  where :math:`1/y^2` leaves the sum since :math:`y` is constant along the
  axes it was broadcast over.
  """
  x, y = res
  # 1/y is constant along the axes y is broadcast over, so it factors out of
  # the sum for dy: one reciprocal on y's (often smaller) shape, and the
  # full-shape work is two multiplications and one reduction.
  r = 1 / y
  dx = _unbroadcast(dz * r, jnp.shape(x))
  dy = -(r * r) * _unbroadcast(dz * x, jnp.shape(y))
  return dx.astype(jnp.result_type(x)), dy.astype(jnp.result_type(y))


divide.defvjp(_divide_fwd, _divide_bwd)


@jax.custom_vjp
def normalize(x: jax.Array) -> jax.Array:
  r"""Divides by the sum over the last axis, :math:`z = x / \sum_j x_j`."""
  return _normalize_fwd(x)[0]


def _normalize_fwd(x):
  _checks.floating("normalize", x=x)
  _checks.rank("normalize", "x", x, min_ndim=1)
  s = jnp.sum(x, -1, keepdims=True)
  z = x / s
  return z, (z, s)


def _normalize_bwd(res, dz):
  r"""The residuals are the output and the row sums :math:`s`; since
  :math:`\partial z_i / \partial x_j = (\delta_{ij} - z_i) / s`,

  .. math::
    \bar{x} = (\bar{z} - \langle \bar{z}, z \rangle) / s.
  """
  z, s = res
  return ((dz - jnp.sum(dz * z, -1, keepdims=True)) / s,)


normalize.defvjp(_normalize_fwd, _normalize_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def expand(x: jax.Array, n: int) -> jax.Array:
  r"""Copies ``x`` along a new last axis of size ``n``, :math:`y_{\dots k} =
  x_{\dots}`."""
  return _expand_fwd(x, n)[0]


def _expand_fwd(x, n):
  _checks.floating("expand", x=x)
  if not isinstance(n, int) or n < 1:
    raise ValueError(f"expand: n must be a positive int, got {n!r}.")
  return jnp.broadcast_to(x[..., None], (*jnp.shape(x), n)), None


def _expand_bwd(n, res, dy):
  r"""Nothing is saved; the transpose of a copy is a sum:

  .. math::
    \bar{x} = \textstyle\sum_k \bar{y}_{\dots k}.
  """
  del n, res  # The shape of dy carries n.
  return (jnp.sum(dy, -1),)


expand.defvjp(_expand_fwd, _expand_bwd)
