"""Edge cases of the mini-autodiff ops: broadcasting divide, normalize, expand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import ops

BROADCASTS = [
    ((3, 4), (3, 4)),
    ((3, 4), (1, 4)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 3, 4)),
    ((3, 4), ()),
]


@pytest.mark.parametrize("x_shape, y_shape", BROADCASTS)
def test_divide_broadcasts_like_jnp_and_unbroadcasts_cotangents(
    x_shape, y_shape, x64
):
  x = jax.random.normal(jax.random.key(0), x_shape, jnp.float64)
  y = jax.random.uniform(jax.random.key(1), y_shape, jnp.float64) + 0.5
  z, vjp = jax.vjp(ops.divide, x, y)
  z_ref, vjp_ref = jax.vjp(jnp.divide, x, y)
  np.testing.assert_allclose(z, z_ref, rtol=1e-15)
  ct = jax.random.normal(jax.random.key(2), z.shape, jnp.float64)
  (dx, dy), (dx_ref, dy_ref) = vjp(ct), vjp_ref(ct)
  assert dx.shape == x_shape and dy.shape == y_shape
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-12)
  np.testing.assert_allclose(dy, dy_ref, rtol=1e-12)


def test_divide_of_non_broadcastable_shapes_raises_value_error_naming_them():
  with pytest.raises(ValueError, match=r"x \(3, 4\), y \(3,\)"):
    ops.divide(jnp.ones((3, 4)), jnp.ones(3))


def test_normalize_rows_sum_to_one_and_gradient_is_orthogonal_to_x():
  x = jax.random.uniform(jax.random.key(0), (3, 5)) + 0.1
  z = ops.normalize(x)
  np.testing.assert_allclose(jnp.sum(z, -1), 1, rtol=1e-6)
  # z is scale invariant, so the gradient has no component along x.
  dx = jax.grad(lambda x: jnp.sum(ops.normalize(x) * jnp.arange(5.0)))(x)
  np.testing.assert_allclose(jnp.sum(dx * x, -1), 0, atol=1e-6)


def test_expand_copies_and_its_backward_sums():
  x = jnp.arange(6.0).reshape(2, 3)
  y, vjp = jax.vjp(lambda x: ops.expand(x, 4), x)
  assert y.shape == (2, 3, 4)
  np.testing.assert_array_equal(y[..., 3], x)
  (dx,) = vjp(jnp.broadcast_to(jnp.arange(4.0), y.shape))
  np.testing.assert_array_equal(dx, jnp.full((2, 3), 6.0))
  assert jax.tree.leaves(vjp) == []


@pytest.mark.parametrize("n", [0, -1, 2.0])
def test_expand_rejects_a_non_positive_or_non_int_size(n):
  with pytest.raises(ValueError, match="n must be a positive int"):
    ops.expand(jnp.ones(3), n)


def test_normalize_rejects_a_scalar():
  with pytest.raises(ValueError, match=r"at least 1 axes, got shape \(\)"):
    ops.normalize(jnp.ones(()))
