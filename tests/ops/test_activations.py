"""Edge cases of the activations: kinks, saturation, hyperparameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import ops

# Points at and around every kink, plus saturating magnitudes.
X = jnp.array([-1e3, -30.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 30.0, 1e3])

PAIRS = [
    (ops.relu, jax.nn.relu),
    (lambda x: ops.leaky_relu(x, 0.05), lambda x: jax.nn.leaky_relu(x, 0.05)),
    (lambda x: ops.elu(x, 1.5), lambda x: jax.nn.elu(x, 1.5)),
    (lambda x: ops.elu(x, 0.0), lambda x: jax.nn.elu(x, 0.0)),
    (ops.tanh, jnp.tanh),
    (ops.sigmoid, jax.nn.sigmoid),
]


@pytest.mark.parametrize("op, reference", PAIRS)
def test_gradient_matches_jax_nn_at_kinks_and_saturation(op, reference):
  y, dx = jax.value_and_grad(lambda x: jnp.sum(op(x)))(X)
  y_ref, dx_ref = jax.value_and_grad(lambda x: jnp.sum(reference(x)))(X)
  np.testing.assert_allclose(y, y_ref, rtol=1e-6)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-30)
  assert jnp.all(jnp.isfinite(dx))


def test_leaky_relu_and_elu_slopes_away_from_the_kink():
  x = jnp.array([-2.0, -0.5, 0.5, 2.0])
  np.testing.assert_allclose(
      jax.grad(lambda x: jnp.sum(ops.leaky_relu(x, 0.2)))(x),
      [0.2, 0.2, 1.0, 1.0],
  )
  np.testing.assert_allclose(
      jax.grad(lambda x: jnp.sum(ops.elu(x, 0.5)))(x),
      [0.5 * np.exp(-2.0), 0.5 * np.exp(-0.5), 1.0, 1.0],
      rtol=1e-6,
  )


def test_residuals_are_one_array_and_relu_saves_one_byte_per_entry():
  x = jnp.ones((3, 4))
  for op in (ops.relu, ops.leaky_relu, ops.elu, ops.tanh, ops.sigmoid):
    _, vjp = jax.vjp(op, x)
    assert len(jax.tree.leaves(vjp)) == 1
  _, vjp = jax.vjp(ops.relu, x)
  assert jax.tree.leaves(vjp)[0].dtype == jnp.bool_


def test_negative_elu_alpha_raises_value_error():
  with pytest.raises(ValueError, match="alpha must be >= 0"):
    ops.elu(jnp.ones(3), -1.0)


@pytest.mark.parametrize("op, reference", PAIRS)
def test_nan_propagates_like_jax_nn_forward_and_backward(op, reference):
  x = jnp.array([jnp.nan, -1.0, 1.0])
  y, dx = jax.value_and_grad(lambda x: jnp.sum(op(x) * jnp.arange(1.0, 4.0)))(x)
  want_y = reference(x)
  want_dx = jax.grad(lambda x: jnp.sum(reference(x) * jnp.arange(1.0, 4.0)))(x)
  np.testing.assert_array_equal(op(x), want_y)  # NaN where jax.nn has NaN.
  assert jnp.isnan(op(x)[0])
  np.testing.assert_array_equal(dx, want_dx)
  assert jnp.isnan(y)
