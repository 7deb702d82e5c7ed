"""Edge cases of the cross-entropy losses against optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxbp import ops

# Extreme logits: the label's logit is the max, tied, or 2e4 below the max.
LOGITS = jnp.array(
    [[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, -1e4, -1e4], [0.0, 1e4, -1e4]]
)
LABELS = jnp.array([0, 1, 1, 2])


def test_extreme_logits_match_optax_to_1e_6():
  loss, dz = jax.value_and_grad(ops.softmax_cross_entropy)(LOGITS, LABELS)

  def reference(z):
    return optax.softmax_cross_entropy_with_integer_labels(z, LABELS).mean()

  loss_ref, dz_ref = jax.value_and_grad(reference)(LOGITS)
  np.testing.assert_allclose(loss, loss_ref, rtol=1e-6)
  np.testing.assert_allclose(dz, dz_ref, atol=1e-6)
  assert jnp.all(jnp.isfinite(dz))


def test_integer_and_one_hot_labels_agree_and_integers_get_no_cotangent():
  one_hot = jax.nn.one_hot(LABELS, 3)
  loss, vjp = jax.vjp(ops.softmax_cross_entropy, LOGITS, LABELS)
  loss_1h, vjp_1h = jax.vjp(ops.softmax_cross_entropy, LOGITS, one_hot)
  np.testing.assert_allclose(loss, loss_1h, rtol=1e-7)
  dz, dlabels = vjp(jnp.ones(()))
  np.testing.assert_allclose(dz, vjp_1h(jnp.ones(()))[0], atol=1e-7)
  assert dlabels.dtype == jax.dtypes.float0


def test_unnormalized_soft_labels_match_optax():
  z = jax.random.normal(jax.random.key(0), (4, 5))
  t = jax.random.uniform(jax.random.key(1), (4, 5))  # rows do not sum to 1
  grads = jax.grad(ops.softmax_cross_entropy, (0, 1))(z, t)
  grads_ref = jax.grad(
      lambda z, t: optax.softmax_cross_entropy(z, t).mean(), (0, 1)
  )(z, t)
  for got, want in zip(grads, grads_ref, strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_cross_entropy_treats_zero_times_log_zero_as_zero():
  probs = jnp.array([[0.0, 0.25, 0.75], [0.5, 0.5, 0.0]])
  targets = jnp.array([[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
  loss, (dp, dt) = jax.value_and_grad(ops.cross_entropy, (0, 1))(probs, targets)
  np.testing.assert_allclose(loss, -(np.log(0.75) + np.log(0.5)) / 2, rtol=1e-6)
  np.testing.assert_allclose(dp, [[0, 0, -1 / 1.5], [-0.5, -0.5, 0]], rtol=1e-6)
  assert jnp.isposinf(dt[0, 0]) and jnp.isfinite(dt[0, 1:]).all()


def test_cross_entropy_of_softmax_equals_softmax_cross_entropy():
  z = jax.random.normal(jax.random.key(0), (6, 4))
  t = jax.nn.one_hot(jnp.arange(6) % 4, 4)
  f = lambda z: ops.cross_entropy(ops.softmax(z), t)
  g = lambda z: ops.softmax_cross_entropy(z, t)
  np.testing.assert_allclose(f(z), g(z), rtol=1e-6)
  np.testing.assert_allclose(jax.grad(f)(z), jax.grad(g)(z), atol=1e-6)


@pytest.mark.parametrize(
    "logits_shape, labels, match",
    [
        ((4, 3), jnp.zeros(5, jnp.int32), r"labels has shape \(5,\), expected"
         r" \(4,\).*logits \(4, 3\)"),
        ((4, 3), jnp.zeros((4, 2)), r"labels has shape \(4, 2\), expected"
         r" \(4, 3\)"),
    ],
)  # fmt: skip
def test_mismatched_labels_raise_value_error_naming_shapes(
    logits_shape, labels, match
):
  with pytest.raises(ValueError, match=match):
    ops.softmax_cross_entropy(jnp.zeros(logits_shape), labels)


def test_cross_entropy_shape_mismatch_raises_value_error():
  with pytest.raises(ValueError, match=r"probs \(4, 3\), targets \(4, 2\)"):
    ops.cross_entropy(jnp.ones((4, 3)) / 3, jnp.ones((4, 2)) / 2)
