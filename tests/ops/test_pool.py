"""Pooling: max-pool's tie rule and every op against lax.reduce_window.

The shared contracts (jit, vmap, dtypes, custom rule, spy) run in
test_contracts.py; here: strides, paddings, odd and tiny maps, ties.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util

from jaxbp import ops
from jaxbp.gradcheck import jaxprs, references
from jaxbp.ops import _pool_phases

# (x shape, window, stride, padding): odd sizes, 1x1 and 2x2 maps, windows
# smaller than, equal to and larger than the stride, channels 1 to 512.
CONFIGS = [
    ((2, 5, 7, 3), 3, 2, 1),
    ((2, 8, 8, 2), 3, 2, 1),
    ((1, 1, 1, 4), 3, 2, 1),
    ((2, 2, 2, 512), 3, 2, 1),
    ((2, 7, 5, 1), 2, 2, 0),
    ((1, 5, 6, 2), 3, 1, 1),
    ((1, 7, 7, 2), 3, 3, 0),
    ((1, 6, 7, 2), 2, 3, 1),
    ((1, 4, 4, 2), 4, 1, 2),
    ((1, 5, 5, 2), 1, 2, 0),
]


def _reference(kind, x, window, stride, padding):
  pool = {"max": references.max_pool2d, "avg": references.avg_pool2d}[kind]
  return pool(x, window, stride, padding)


@functools.partial(jax.jit, static_argnums=0)
def _value_and_vjp(fn, x, dy):
  y, vjp = jax.vjp(fn, x)
  return y, vjp(dy)[0]


def _check(kind, x, window, stride, padding):
  op = {"max": ops.max_pool2d, "avg": ops.avg_pool2d}[kind]
  ref = lambda x: _reference(kind, x, window, stride, padding)
  y = jax.eval_shape(ref, x)
  dy = jnp.asarray(np.random.default_rng(1).standard_normal(y.shape))
  want = _value_and_vjp(ref, x, dy)
  got = _value_and_vjp(lambda x: op(x, window, stride, padding), x, dy)
  for g, w in zip(got, want, strict=True):
    np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x_shape, window, stride, padding", CONFIGS)
def test_vjp_matches_reduce_window_autodiff(
    kind, x_shape, window, stride, padding, x64
):
  x = jnp.asarray(np.random.default_rng(0).standard_normal(x_shape))
  _check(kind, x, window, stride, padding)


@pytest.mark.parametrize("x_shape, window, stride, padding", CONFIGS)
def test_max_pool_ties_are_routed_like_autodiff(
    x_shape, window, stride, padding, x64
):
  # Integers in [-2, 2]: most windows hold several equal maxima.
  x = np.random.default_rng(0).integers(-2, 3, x_shape).astype(np.float64)
  _check("max", jnp.asarray(x), window, stride, padding)


def test_max_pool_tie_goes_to_first_in_row_major_window_order():
  x = jnp.zeros((1, 4, 4, 1))
  dx = jax.grad(lambda x: jnp.sum(ops.max_pool2d(x, 2, 2, 0) * 10))(x)
  want = np.zeros((4, 4))
  want[::2, ::2] = 10  # each window's top-left element
  np.testing.assert_array_equal(dx[0, :, :, 0], want)
  # Window 3, stride 1, padding 1: the window of output (h, w) starts at the
  # real element (max(h - 1, 0), max(w - 1, 0)); -inf padding never wins.
  dx = jax.grad(lambda x: jnp.sum(ops.max_pool2d(x, 3, 1, 1)))(x)
  want = np.zeros((4, 4))
  np.add.at(
      want,
      (
          np.maximum(np.arange(4) - 1, 0)[:, None],
          np.maximum(np.arange(4) - 1, 0),
      ),
      1,
  )
  np.testing.assert_array_equal(dx[0, :, :, 0], want)


@pytest.mark.parametrize(
    "op, x_shape, window, stride, padding",
    [
        (ops.max_pool2d, (1, 5, 4, 2), 3, 2, 1),
        (ops.max_pool2d, (2, 2, 2, 1), 2, 1, 1),
        (ops.avg_pool2d, (1, 5, 4, 2), 3, 2, 1),
    ],
)
def test_finite_differences_second_order(
    op, x_shape, window, stride, padding, x64
):
  # Distinct values 0.05 apart: no max changes within the FD step.
  n = int(np.prod(x_shape))
  x = np.random.default_rng(0).permutation(np.linspace(-1, 1, n))
  f = jax.jit(lambda x: op(x, window, stride, padding))
  test_util.check_grads(
      f, (jnp.asarray(x.reshape(x_shape)),), order=2, modes=["rev"]
  )


def test_global_avg_pool_matches_mean_and_its_gradient(x64):
  for shape in ((2, 1, 1, 3), (2, 3, 5, 4)):
    x = jnp.asarray(np.random.default_rng(0).standard_normal(shape))
    dy = jnp.asarray(np.random.default_rng(1).standard_normal((2, shape[3])))
    got = _value_and_vjp(ops.global_avg_pool, x, dy)
    want = _value_and_vjp(lambda x: jnp.mean(x, (1, 2)), x, dy)
    for g, w in zip(got, want, strict=True):
      np.testing.assert_allclose(g, w, rtol=1e-13)


_primitives = jaxprs.primitives


def test_max_pool_backward_avoids_select_and_scatter():
  x = jnp.ones((2, 8, 8, 3))
  grad = lambda f: jax.grad(lambda x: jnp.sum(f(x)))
  assert not any("scatter" in p for p in _primitives(grad(ops.max_pool2d), x))
  plain = _primitives(grad(ops.plain(ops.max_pool2d)), x)
  assert any("select_and_scatter" in p for p in plain)


def test_max_pool_nan_window_routes_to_its_first_offset():
  # No entry equals a NaN maximum; the index falls back to offset 0.
  x = jnp.asarray([1.0, np.nan, 3.0, 2.0]).reshape(1, 2, 2, 1)
  y, vjp = jax.vjp(lambda x: ops.max_pool2d(x, 2, 2, 0), x)
  assert np.isnan(y).all()
  np.testing.assert_array_equal(vjp(jnp.ones_like(y))[0].ravel(), [1, 0, 0, 0])


@pytest.mark.parametrize("x_shape, window, stride, padding", CONFIGS)
def test_first_max_is_the_same_on_every_backend_path(
    x_shape, window, stride, padding
):
  # CPU takes the smaller of two halves' first matches through a
  # reduce-window; other backends one chain over all offsets. Integer
  # inputs: most windows hold several equal maxima.
  x = np.random.default_rng(0).integers(-2, 3, x_shape).astype(np.float32)
  y = ops.max_pool2d(jnp.asarray(x), window, stride, padding)
  first = {
      backend: _pool_phases.first_max(
          jnp.asarray(x), y, window, stride, padding, backend
      )
      for backend in ("cpu", "tpu")
  }
  np.testing.assert_array_equal(first["cpu"], first["tpu"])
  assert first["cpu"].dtype == jnp.int8


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU fusion")
def test_max_pool_index_is_kept_from_forward_not_rederived_in_backward():
  # After BN + ReLU, as in the VGG: the compiled step keeps the int8 index
  # of each window's first maximum (_pool_phases.first_max's docstring).
  def loss(x, g, b):
    return jnp.sum(ops.max_pool2d(ops.relu(ops.batch_norm(x, g, b)), 3, 2, 1))

  x, c = jnp.ones((4, 16, 16, 8)), jnp.ones(8)
  hlo = jax.jit(jax.grad(loss)).lower(x, c, c).compile().as_text()
  entry = hlo[hlo.index("ENTRY") :]
  assert re.search(r"= s8\[4,8,8,8(,1)?\]", entry), entry


@pytest.mark.parametrize("op", [ops.max_pool2d, ops.avg_pool2d])
@pytest.mark.parametrize(
    "x_shape, kwargs, match",
    [
        ((4, 4, 3), {}, r"x must have 4 axes.*\(4, 4, 3\)"),
        ((1, 4, 4, 3), {"window": 0}, r"window must be an int >= 1, got 0"),
        ((1, 4, 4, 3), {"stride": 0}, r"stride must be an int >= 1, got 0"),
        ((1, 4, 4, 3), {"padding": -1}, r"padding must be an int >= 0, got -1"),
        ((1, 4, 4, 3), {"window": 2.0}, r"window must be an int"),
        (
            (1, 2, 3, 3),
            {"window": 4, "padding": 0},
            r"larger than.*\(1, 2, 3, 3\)",
        ),
    ],
)
def test_bad_arguments_raise_value_error_naming_shapes(
    op, x_shape, kwargs, match
):
  x = jnp.ones(x_shape)
  with pytest.raises(ValueError, match=match):
    op(x, **kwargs)
  with pytest.raises(ValueError, match=match):
    jax.grad(lambda x: jnp.sum(op(x, **kwargs)))(x)


def test_global_avg_pool_rejects_non_nhwc():
  with pytest.raises(ValueError, match=r"x must have 4 axes.*\(2, 3\)"):
    ops.global_avg_pool(jnp.ones((2, 3)))
