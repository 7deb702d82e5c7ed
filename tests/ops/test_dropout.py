"""Edge cases of dropout: rate bounds, scaling, mask reuse, key handling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import ops

KEY = jax.random.key(0)


def test_rate_zero_is_the_identity():
  x = jnp.arange(5.0)
  y, vjp = jax.vjp(lambda x: ops.dropout(x, KEY, 0.0), x)
  np.testing.assert_array_equal(y, x)
  np.testing.assert_array_equal(vjp(jnp.ones(5))[0], jnp.ones(5))


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_rate_outside_zero_one_raises_value_error(rate):
  with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
    ops.dropout(jnp.ones(3), KEY, rate)


def test_drops_the_expected_fraction_and_scales_the_rest():
  x = jnp.ones((200, 500))
  y = ops.dropout(x, KEY, 0.3)
  kept = y != 0
  # 100k Bernoulli draws: the kept fraction is within 0.005 of 0.7 w.h.p.
  assert abs(float(jnp.mean(kept)) - 0.7) < 0.005
  np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)


def test_backward_reuses_the_forward_mask_and_saves_one_byte_per_entry():
  x = jax.random.normal(jax.random.key(1), (64, 32))
  y, vjp = jax.vjp(lambda x: ops.dropout(x, KEY, 0.5), x)
  (dx,) = vjp(jnp.ones_like(x))
  np.testing.assert_array_equal(dx != 0, y != 0)
  np.testing.assert_allclose(dx[y != 0], 2.0)
  (mask,) = jax.tree.leaves(vjp)
  assert mask.dtype == jnp.bool_ and mask.shape == x.shape


def test_key_gets_no_cotangent_and_raw_keys_work():
  x = jnp.ones(8)
  _, vjp = jax.vjp(
      lambda x, k: ops.dropout(x, k, 0.5), x, jax.random.PRNGKey(3)
  )
  _, dkey = vjp(jnp.ones(8))
  assert dkey.dtype == jax.dtypes.float0


def test_a_non_key_raises_type_error():
  with pytest.raises(TypeError, match=r"key must be a PRNG key"):
    ops.dropout(jnp.ones(3), jnp.ones(3), 0.5)
