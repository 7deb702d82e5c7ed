"""Elementwise activations, each saving only what its derivative reads."""

import functools

import jax
import jax.numpy as jnp

from jaxbp.ops import _checks


@jax.custom_vjp
def relu(x: jax.Array) -> jax.Array:
  r"""Rectified linear unit, :math:`y = \max(x, 0)`."""
  return _relu_fwd(x)[0]


def _relu_fwd(x):
  _checks.floating("relu", x=x)
  # maximum, not where(x > 0, x, 0): NaN stays NaN, as in jax.nn.relu.
  return jnp.maximum(x, 0).astype(x.dtype), x > 0


def _relu_bwd(mask, dy):
  r"""The residual is the 1-byte mask :math:`x > 0` (the derivative at 0 is 0).

  Every elementwise :math:`y_i = f(x_i)` has a diagonal Jacobian,
  :math:`\partial y_i / \partial x_j = \delta_{ij} f'(x_i)`, so
  :math:`\bar{x}_j = \sum_i \bar{y}_i \delta_{ij} f'(x_i) = \bar{y}_j
  f'(x_j)`: one elementwise product, never a matrix. Here :math:`f'(x) =
  [x > 0]` (1 where true, else 0):

  .. math::
    \bar{x} = \bar{y} \odot [x > 0].
  """
  return (jnp.where(mask, dy, 0).astype(dy.dtype),)


relu.defvjp(_relu_fwd, _relu_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def leaky_relu(x: jax.Array, negative_slope: float = 0.01) -> jax.Array:
  r"""Leaky ReLU, :math:`y = x` for :math:`x \ge 0`, else :math:`a x`."""
  return _leaky_relu_fwd(x, negative_slope)[0]


def _leaky_relu_fwd(x, negative_slope):
  _checks.floating("leaky_relu", x=x)
  mask = x >= 0
  return jnp.where(mask, x, negative_slope * x).astype(x.dtype), mask


def _leaky_relu_bwd(negative_slope, mask, dy):
  r"""The residual is the mask :math:`x \ge 0` (slope 1 at the kink, like jax.nn).

  Diagonal Jacobian as for :func:`relu`, with :math:`f'(x) = 1` for
  :math:`x \ge 0` and :math:`a` (``negative_slope``) below:

  .. math::
    \bar{x} = \bar{y} \odot ([x \ge 0] + a\,[x < 0]).
  """
  return (jnp.where(mask, dy, negative_slope * dy).astype(dy.dtype),)


leaky_relu.defvjp(_leaky_relu_fwd, _leaky_relu_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def elu(x: jax.Array, alpha: float = 1.0) -> jax.Array:
  r"""Exponential linear unit, :math:`y = x` for :math:`x > 0`, else
  :math:`\alpha (e^x - 1)`; ``alpha`` must be non-negative."""
  return _elu_fwd(x, alpha)[0]


def _elu_fwd(x, alpha):
  _checks.floating("elu", x=x)
  if alpha < 0:
    raise ValueError(f"elu: alpha must be >= 0, got {alpha}.")
  # expm1 of min(x, 0) so the unused branch never overflows to inf.
  y = jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0)))
  return y.astype(x.dtype), y


def _elu_bwd(alpha, y, dy):
  r"""The residual is the output alone. Diagonal Jacobian as for
  :func:`relu`: :math:`f'(x) = 1` for :math:`x > 0`, and for :math:`x \le 0`
  :math:`f'(x) = \alpha e^x = \alpha (e^x - 1) + \alpha = y + \alpha` (so
  :math:`\alpha` at the kink, like jax.nn); :math:`y > 0 \iff x > 0` since
  :math:`\alpha \ge 0`, so ``y`` also tells the branch.

  .. math::
    \bar{x} = \bar{y} \odot ([y > 0] + [y \le 0]\,(y + \alpha)).
  """
  return (jnp.where(y > 0, dy, dy * (y + alpha)).astype(dy.dtype),)


elu.defvjp(_elu_fwd, _elu_bwd)


@jax.custom_vjp
def tanh(x: jax.Array) -> jax.Array:
  r"""Hyperbolic tangent, :math:`y = \tanh x`."""
  return _tanh_fwd(x)[0]


def _tanh_fwd(x):
  _checks.floating("tanh", x=x)
  y = jnp.tanh(x)
  return y, y


def _tanh_bwd(y, dy):
  r"""The residual is the output. Diagonal Jacobian as for :func:`relu`,
  with :math:`\tanh' x = 1 / \cosh^2 x = (\cosh^2 x - \sinh^2 x) / \cosh^2 x
  = 1 - \tanh^2 x = 1 - y^2`:

  .. math::
    \bar{x} = \bar{y} \odot (1 - y^2).
  """
  return (dy * (1 - y * y),)


tanh.defvjp(_tanh_fwd, _tanh_bwd)


@jax.custom_vjp
def sigmoid(x: jax.Array) -> jax.Array:
  r"""Logistic sigmoid, :math:`y = 1 / (1 + e^{-x})`."""
  return _sigmoid_fwd(x)[0]


def _sigmoid_fwd(x):
  _checks.floating("sigmoid", x=x)
  y = jax.lax.logistic(x)
  return y, y


def _sigmoid_bwd(y, dy):
  r"""The residual is the output. Diagonal Jacobian as for :func:`relu`,
  with :math:`y' = e^{-x} / (1 + e^{-x})^2 = y \cdot (1 - y)`, since
  :math:`e^{-x} / (1 + e^{-x}) = 1 - y`:

  .. math::
    \bar{x} = \bar{y} \odot y (1 - y).
  """
  return (dy * y * (1 - y),)


sigmoid.defvjp(_sigmoid_fwd, _sigmoid_bwd)
