"""Edge cases of softmax and log_softmax: masked (-inf) entries, extremes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import ops

# Row 0 has a masked entry; row 1 has extreme but finite logits.
X = jnp.array([[1.0, -jnp.inf, 0.5, -2.0], [1e4, -1e4, 0.0, 1e4]])
CT = jnp.array([[0.3, -1.0, 2.0, 0.7], [-0.4, 0.9, 1.5, 0.2]])


@pytest.mark.parametrize(
    "op, reference",
    [(ops.softmax, jax.nn.softmax), (ops.log_softmax, jax.nn.log_softmax)],
)
def test_rows_with_minus_inf_give_finite_correct_gradients(op, reference):
  y, vjp = jax.vjp(op, X)
  y_ref, vjp_ref = jax.vjp(reference, X)
  np.testing.assert_allclose(y, y_ref, rtol=1e-6)
  (dx,), (dx_ref,) = vjp(CT), vjp_ref(CT)
  assert jnp.all(jnp.isfinite(dx))
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-7)


def test_masked_entry_is_excluded_from_the_distribution():
  dense = jnp.array([[1.0, 0.5, -2.0]])
  masked = X[:1]
  ct = jnp.array([[0.3, 2.0, 0.7]])
  y, vjp = jax.vjp(ops.softmax, masked)
  y_dense, vjp_dense = jax.vjp(ops.softmax, dense)
  np.testing.assert_allclose(jnp.delete(y, 1, 1), y_dense, rtol=1e-6)
  (dx,) = vjp(jnp.insert(ct, 1, 5.0, axis=1))
  assert dx[0, 1] == 0
  np.testing.assert_allclose(jnp.delete(dx, 1, 1), vjp_dense(ct)[0], rtol=1e-6)


def test_axis_is_respected():
  x = jax.random.normal(jax.random.key(0), (3, 4, 5))
  for axis in (0, 1, -1):
    np.testing.assert_allclose(
        ops.log_softmax(x, axis), jax.nn.log_softmax(x, axis), atol=1e-6
    )


def test_out_of_range_axis_raises_value_error_naming_the_shape():
  with pytest.raises(ValueError, match=r"axis 2 .* shape \(2, 4\)"):
    ops.softmax(X, 2)


def test_bfloat16_probabilities_sum_to_one_over_many_classes():
  x = jax.random.normal(jax.random.key(0), (2, 4096), jnp.bfloat16)
  y = ops.softmax(x)
  assert y.dtype == jnp.bfloat16
  np.testing.assert_allclose(jnp.sum(y.astype(jnp.float32), -1), 1, rtol=1e-2)
