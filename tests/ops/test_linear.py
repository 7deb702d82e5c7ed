"""Edge cases of ops.linear beyond the shared contracts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import ops


def test_without_bias_matches_matmul_and_has_no_bias_cotangent():
  x, w = jnp.ones((2, 3)), jnp.arange(12.0).reshape(3, 4)
  y, vjp = jax.vjp(lambda x, w: ops.linear(x, w, None), x, w)
  np.testing.assert_array_equal(y, x @ w)
  dx, dw = vjp(jnp.ones_like(y))
  np.testing.assert_array_equal(dx, jnp.ones((2, 4)) @ w.T)
  np.testing.assert_array_equal(dw, x.T @ jnp.ones((2, 4)))


def test_residuals_are_x_and_w_only():
  x, w, b = jnp.ones((2, 3)), jnp.ones((3, 4)), jnp.ones(4)
  _, vjp = jax.vjp(ops.linear, x, w, b)
  shapes = sorted(leaf.shape for leaf in jax.tree.leaves(vjp))
  assert shapes == [(2, 3), (3, 4)]


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, match",
    [
        ((2, 3), (4, 5), (5,), r"w has shape \(4, 5\), expected \(3, 5\).*x has"
         r" shape \(2, 3\)"),
        ((2, 3), (3, 5), (4,), r"b has shape \(4,\), expected \(5,\)"),
        ((2, 3), (3,), (3,), r"w must have 2 axes, got shape \(3,\)"),
    ],
)  # fmt: skip
def test_mismatched_shapes_raise_value_error_naming_them(
    x_shape, w_shape, b_shape, match
):
  with pytest.raises(ValueError, match=match):
    ops.linear(jnp.ones(x_shape), jnp.ones(w_shape), jnp.ones(b_shape))
