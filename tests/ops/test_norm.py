"""Edge cases of batch_norm and layer_norm beyond the shared contracts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxbp import ops
from jaxbp.gradcheck import references

_bn_reference = references.batch_norm


def test_zero_variance_channel_gives_beta_and_finite_correct_gradients(x64):
  x = jax.random.normal(jax.random.key(0), (4, 3, 3, 5), jnp.float64)
  x = x.at[..., 2].set(7.0)  # channel 2 is constant: variance 0
  gamma, beta = jnp.linspace(0.5, 2.0, 5), jnp.linspace(-1.0, 1.0, 5)
  ct = jax.random.normal(jax.random.key(1), x.shape, jnp.float64)
  y, vjp = jax.vjp(ops.batch_norm, x, gamma, beta)
  y_ref, vjp_ref = jax.vjp(_bn_reference, x, gamma, beta)
  np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(y[..., 2], beta[2])
  for got, want in zip(vjp(ct), vjp_ref(ct), strict=True):
    assert jnp.all(jnp.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_batch_norm_matches_flax_batch_norm_in_training_mode():
  x = jax.random.normal(jax.random.key(0), (8, 4, 4, 6)) * 3 + 1
  bn = nnx.BatchNorm(6, use_running_average=False, rngs=nnx.Rngs(0))
  gamma, beta = jnp.linspace(0.5, 2.0, 6), jnp.linspace(-1.0, 1.0, 6)
  bn.scale[...], bn.bias[...] = gamma, beta
  np.testing.assert_allclose(
      ops.batch_norm(x, gamma, beta), bn(x), rtol=1e-5, atol=1e-5
  )


def test_layer_norm_matches_flax_layer_norm():
  x = jax.random.normal(jax.random.key(0), (3, 5, 16)) * 3 + 1
  ln = nnx.LayerNorm(16, epsilon=1e-5, rngs=nnx.Rngs(0))
  gamma, beta = jnp.linspace(0.5, 2.0, 16), jnp.linspace(-1.0, 1.0, 16)
  ln.scale[...], ln.bias[...] = gamma, beta
  np.testing.assert_allclose(
      ops.layer_norm(x, gamma, beta), ln(x), rtol=1e-5, atol=1e-5
  )


def test_large_mean_does_not_break_the_variance():
  # A one-pass E[x^2] - E[x]^2 would cancel catastrophically here.
  x = 1e4 + jax.random.normal(jax.random.key(0), (256, 4))
  y = ops.batch_norm(x, jnp.ones(4), jnp.zeros(4))
  np.testing.assert_allclose(jnp.std(y, 0), 1, rtol=1e-2)


def test_residuals_are_x_hat_rstd_and_gamma():
  x, gamma, beta = jnp.ones((8, 4)), jnp.ones(4), jnp.zeros(4)
  for op, rstd_shape in ((ops.batch_norm, (1, 4)), (ops.layer_norm, (8, 1))):
    _, vjp = jax.vjp(op, x, gamma, beta)
    shapes = sorted(leaf.shape for leaf in jax.tree.leaves(vjp))
    assert shapes == sorted([(8, 4), rstd_shape, (4,)])


@pytest.mark.parametrize("op", [ops.batch_norm, ops.layer_norm])
def test_wrong_parameter_shape_raises_value_error_naming_shapes(op):
  with pytest.raises(ValueError, match=r"gamma has shape \(3,\), expected"
                     r" \(4,\).*x with shape \(2, 4\)"):  # fmt: skip
    op(jnp.ones((2, 4)), jnp.ones(3), jnp.zeros(4))
  with pytest.raises(ValueError, match=r"beta has shape \(4, 1\)"):
    op(jnp.ones((2, 4)), jnp.ones(4), jnp.zeros((4, 1)))


def test_batch_norm_needs_a_batch_axis():
  with pytest.raises(ValueError, match=r"at least 2 axes, got shape \(4,\)"):
    ops.batch_norm(jnp.ones(4), jnp.ones(4), jnp.zeros(4))


def test_batch_norm_with_stats_returns_the_output_and_biased_statistics(x64):
  x = 1.0 + 2.0 * jax.random.normal(
      jax.random.key(0), (4, 3, 3, 5), jnp.float64
  )
  gamma, beta = jnp.linspace(0.5, 2.0, 5), jnp.linspace(-1.0, 1.0, 5)
  y, mean, var = ops.batch_norm_with_stats(x, gamma, beta)
  np.testing.assert_array_equal(y, ops.batch_norm(x, gamma, beta))
  np.testing.assert_allclose(mean, jnp.mean(x, (0, 1, 2)), rtol=1e-13)
  np.testing.assert_allclose(var, jnp.var(x, (0, 1, 2)), rtol=1e-13)
  assert mean.shape == var.shape == (5,)


def test_batch_norm_with_stats_keeps_float32_statistics_for_bfloat16():
  x = jax.random.normal(jax.random.key(0), (8, 6), jnp.bfloat16)
  y, mean, var = ops.batch_norm_with_stats(x, jnp.ones(6), jnp.zeros(6))
  assert y.dtype == jnp.bfloat16
  assert mean.dtype == var.dtype == jnp.float32


def test_statistics_cotangents_add_their_terms_to_dx(x64):
  # d(sum(mean))/dx = 1/M and d(sum(var))/dx = 2 (x - mean) / M, exactly.
  x = jax.random.normal(jax.random.key(0), (6, 3), jnp.float64)
  gamma, beta = jnp.ones(3), jnp.zeros(3)
  stats = lambda x: ops.batch_norm_with_stats(x, gamma, beta)
  dmean = jax.grad(lambda x: jnp.sum(stats(x)[1]))(x)
  dvar = jax.grad(lambda x: jnp.sum(stats(x)[2]))(x)
  np.testing.assert_allclose(dmean, jnp.full_like(x, 1 / 6), rtol=1e-13)
  np.testing.assert_allclose(dvar, 2 * (x - jnp.mean(x, 0)) / 6, rtol=1e-12)


def test_batch_norm_with_stats_validates_like_batch_norm():
  with pytest.raises(ValueError, match=r"batch_norm_with_stats: .*at least 2"):
    ops.batch_norm_with_stats(jnp.ones(4), jnp.ones(4), jnp.zeros(4))
