"""The mini-autodiff (vugrad) ops: divide, normalize and expand."""

import functools
import math

import jax
import jax.numpy as jnp

from jaxbp.ops import _checks, _reduce


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
  if lead:  # As rows of the kept entries: _reduce's fast per-column sum.
    rest = g.shape[len(lead) :]
    g = _reduce.sum_leading(g.reshape(-1, math.prod(rest))).reshape(rest)
  return g


@jax.custom_vjp
def divide(x: jax.Array, y: jax.Array) -> jax.Array:
  r"""Elementwise :math:`z = x / y`, broadcasting like ``jnp.divide``."""
  return _divide_fwd(x, y)[0]


def _divide_fwd(x, y):
  _checks.floating("divide", x=x, y=y)
  _checks.broadcastable("divide", x=x, y=y)
  return jnp.divide(x, y), (x, y)


def _divide_bwd(res, dz):
  r"""The residuals are the inputs.

  Without broadcasting, :math:`z_i = x_i / y_i` has diagonal Jacobians
  :math:`\partial z_i / \partial x_i = 1 / y_i` and :math:`\partial z_i /
  \partial y_i = -x_i / y_i^2`. Broadcasting is a copy (:func:`expand`):
  with :math:`a(I)`, :math:`b(I)` the entries of ``x`` and ``y`` that output
  :math:`I` reads, :math:`z_I = x_{a(I)} / y_{b(I)}`, and the chain rule sums
  over every output that read an entry:

  .. math::
    \bar{x}_a = \sum_{I:\,a(I) = a} \frac{\bar{z}_I}{y_{b(I)}}, \qquad
    \bar{y}_b = -\frac{1}{y_b^2} \sum_{I:\,b(I) = b} \bar{z}_I\, x_{a(I)},

  where :math:`1/y_b^2` leaves the sum since every term reads the same
  :math:`y_b`. With :math:`\Sigma_x`, :math:`\Sigma_y` the sums back over the
  axes ``x``, ``y`` were broadcast along (``_unbroadcast``):

  .. math::
    \bar{x} = \Sigma_x(\bar{z} / y), \qquad
    \bar{y} = -\Sigma_y(\bar{z}\, x) / y^2.
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
  r"""The residuals are the output and the row sums :math:`s`.

  Per row, :math:`z_i = x_i / s` with :math:`s = \sum_j x_j` gives
  :math:`\partial z_i / \partial x_j = \delta_{ij} / s - x_i / s^2 =
  (\delta_{ij} - z_i) / s`, so :math:`\bar{x}_j = \sum_i \bar{z}_i
  (\delta_{ij} - z_i) / s`:

  .. math::
    \bar{x} = (\bar{z} - \langle \bar{z}, z \rangle) / s.

  As vugrad composes it, :math:`z = \mathrm{divide}(x, \mathrm{expand}(s,
  n))`: divide gives :math:`\bar{x} \mathrel{+}= \bar{z} / s` and
  :math:`\bar{s} = -\sum_i \bar{z}_i x_i / s^2 = -\langle \bar{z}, z \rangle
  / s` (expand's backward is that sum), and the sum :math:`s` copies
  :math:`\bar{s}` back to every :math:`x_j`: the same result.
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
  r"""Nothing is saved; the transpose of a copy is a sum.

  Each :math:`y_{\dots k} = x_{\dots}` gives :math:`\partial y_{\dots k} /
  \partial x_{\dots} = 1` for every :math:`k`, so the chain rule adds the
  :math:`n` cotangents of the copies:

  .. math::
    \bar{x} = \textstyle\sum_k \bar{y}_{\dots k}.

  Broadcasting is an implicit expand, which is why :func:`divide` sums its
  cotangents back over the broadcast axes.
  """
  del n, res  # The shape of dy carries n.
  return (jnp.sum(dy, -1),)


expand.defvjp(_expand_fwd, _expand_bwd)
