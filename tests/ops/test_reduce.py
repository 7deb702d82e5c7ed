"""The folded per-channel sum equals jnp.sum over the leading axes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp.ops import _reduce


@pytest.mark.parametrize(
    "shape",
    [(128, 32, 32, 64), (7, 5, 3), (6, 1), (1, 3), (4096, 3), (5,), (0, 4)],
)
def test_sum_leading_equals_sum_over_leading_axes(shape, x64):
  x = jax.random.normal(jax.random.key(0), shape, jnp.float64)
  lead = tuple(range(x.ndim - 1))
  for keepdims in (False, True):
    got = _reduce.sum_leading(x, keepdims)
    want = jnp.sum(x, lead, keepdims=keepdims)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
  if x.size:
    np.testing.assert_allclose(
        _reduce.mean_leading(x), jnp.mean(x, lead), rtol=1e-12
    )


def test_wide_rows_are_folded_and_narrow_maps_left_alone():
  # 64 channels over 128*32*32 rows fold 16 rows into one 1,024-wide row.
  jaxpr = jax.make_jaxpr(_reduce.sum_leading)(jnp.ones((128, 32, 32, 64)))
  shapes = [e.outvars[0].aval.shape for e in jaxpr.eqns if "reshape" in str(e)]
  assert (8192, 1024) in shapes
