"""The affine layer y = x @ w + b with its hand-derived backward."""

import jax
import jax.numpy as jnp

from jaxbp.ops import _checks, _reduce


@jax.custom_vjp
def linear(x: jax.Array, w: jax.Array, b: jax.Array | None) -> jax.Array:
  r"""Applies an affine map in Flax's kernel layout.

  With :math:`x \in \mathbb{R}^{\dots \times n}`, :math:`w \in \mathbb{R}^{n
  \times m}` and :math:`b \in \mathbb{R}^m` (or ``None`` for no bias),

  .. math::
    y = x w + b.

  Args:
    x: inputs of shape ``(..., in)``.
    w: kernel of shape ``(in, out)``.
    b: bias of shape ``(out,)``, or ``None``.

  Returns:
    Outputs of shape ``(..., out)``.
  """
  return _linear_fwd(x, w, b)[0]


def _linear_fwd(x, w, b):
  _checks.floating("linear", x=x, w=w)
  _checks.rank("linear", "x", x, min_ndim=1)
  _checks.rank("linear", "w", w, ndim=2)
  x_shape = _checks.shape_of(x)
  _checks.shape(
      "linear", "w", w, (x_shape[-1], w.shape[1]), f"x has shape {x_shape}"
  )
  y = jnp.matmul(x, w)
  if b is not None:
    _checks.floating("linear", b=b)
    _checks.shape("linear", "b", b, (w.shape[1],), f"w has shape {w.shape}")
    y = y + b
  # An empty tuple (not None) marks a bias in the residual's tree structure,
  # which stays static under jit and vmap; the bias values are not needed.
  return y, (x, w, None if b is None else ())


def _linear_bwd(res, dy):
  r"""Backward of :math:`y = x w + b`; the residuals are ``x`` and ``w``.

  In index notation, with the leading axes flattened to rows :math:`i` and
  :math:`\bar{y}_{ij} = \partial L / \partial y_{ij}` (``dy``),
  :math:`y_{ij} = \sum_k x_{ik} w_{kj} + b_j` gives
  :math:`\partial y_{ij} / \partial x_{ik} = w_{kj}`,
  :math:`\partial y_{ij} / \partial w_{kj} = x_{ik}` and
  :math:`\partial y_{ij} / \partial b_j = 1`; the chain rule sums over every
  output an input reaches:

  .. math::
    \bar{x}_{ik} = \sum_j \bar{y}_{ij} w_{kj}, \qquad
    \bar{w}_{kj} = \sum_i x_{ik} \bar{y}_{ij}, \qquad
    \bar{b}_j = \sum_i \bar{y}_{ij}.

  In matrix form, as the code computes it (``tensordot`` over the leading
  axes is :math:`x^\top \bar{y}` of the flattened rows):

  .. math::
    \bar{x} = \bar{y} w^\top, \qquad \bar{w} = x^\top \bar{y}, \qquad
    \bar{b} = \textstyle\sum_{\text{rows}} \bar{y}.
  """
  x, w, bias_marker = res
  lead = tuple(range(dy.ndim - 1))
  dx = jnp.matmul(dy, w.T).astype(x.dtype)
  dw = jnp.tensordot(x, dy, (lead, lead)).astype(w.dtype)
  db = (
      _reduce.sum_leading(dy).astype(w.dtype)
      if bias_marker is not None
      else None
  )
  return dx, dw, db


linear.defvjp(_linear_fwd, _linear_bwd)
