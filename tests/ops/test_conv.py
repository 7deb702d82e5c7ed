"""conv2d: every formulation against lax over strides, paddings and sizes.

The shared contracts (jit, vmap, dtypes, custom rule, spy) run in
test_contracts.py; here each path choose_impl can pick is forced and checked.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util

from jaxbp import _xla_flags, ops
from jaxbp.gradcheck import jaxprs, references
from jaxbp.ops import _conv_impl

on_cpu = pytest.mark.skipif(
    jax.default_backend() != "cpu", reason="CPU-only implementation choice"
)
on_accelerator = pytest.mark.skipif(
    jax.default_backend() == "cpu", reason="needs a GPU or TPU backend"
)

LAX, MATMUL, TAPS = ("lax",) * 3, ("matmul",) * 3, ("taps",) * 3
WINOGRAD = ("winograd",) * 3
# (x shape, kernel (kh, kw, out), stride, padding): odd sizes, 1x1 and 2x2
# maps, kernels wider than the map, strides 1-3, every padding kind.
CONFIGS = [
    ((2, 5, 7, 3), (3, 3, 4), 1, "SAME"),
    ((2, 5, 7, 3), (3, 3, 4), 2, "SAME"),
    ((1, 7, 6, 2), (3, 3, 3), 3, "SAME"),
    ((2, 6, 5, 2), (3, 3, 3), 2, "VALID"),
    ((1, 7, 7, 1), (2, 3, 2), 3, "VALID"),
    ((2, 4, 5, 2), (3, 3, 2), 1, 0),
    ((2, 4, 4, 2), (3, 3, 2), 2, 1),
    ((1, 3, 5, 2), (3, 3, 2), 3, 2),
    ((2, 1, 1, 4), (3, 3, 3), 1, "SAME"),
    ((2, 2, 2, 3), (3, 3, 3), 1, 1),
    ((2, 2, 2, 3), (1, 1, 5), 1, 2),
    ((1, 2, 2, 1), (3, 3, 512), 1, "SAME"),
    ((1, 2, 2, 512), (3, 3, 1), 2, 1),
    ((1, 3, 5, 2), (3, 3, 2), 1, 2),
    ((2, 6, 5, 2), (3, 3, 3), 1, "VALID"),
    # Every output reads padding only: y is the bias, dx and dw are zero.
    ((1, 1, 1, 2), (1, 1, 3), 3, 2),
]


_reference = references.conv2d


def _args(x_shape, kernel, seed=0, dtype=jnp.float64):
  rng = np.random.default_rng(seed)
  kh, kw, out = kernel
  x = rng.standard_normal(x_shape)
  w = rng.standard_normal((kh, kw, x_shape[3], out)) / np.sqrt(kh * kw)
  b = rng.standard_normal(out)
  return [jnp.asarray(a, dtype) for a in (x, w, b)]


def _winograd_fits(kernel, stride, padding):
  """F(2x2, 3x3): 3x3 kernels, stride 1, paddings of at most 2."""
  return (
      kernel[:2] == (3, 3)
      and stride == 1
      and padding in ("SAME", "VALID", 0, 1, 2)
  )


def _assert_close(got, want, rtol):
  for g, r in zip(got, want, strict=True):
    assert g.shape == r.shape
    assert float(jnp.max(jnp.abs(g - r))) <= rtol * float(jnp.max(jnp.abs(r)))


@functools.partial(jax.jit, static_argnums=0)
def _value_and_vjp(fn, dy, *args):
  y, vjp = jax.vjp(fn, *args)
  return (y, *vjp(dy))


@pytest.mark.parametrize("x_shape, kernel, stride, padding", CONFIGS)
def test_every_formulation_matches_lax_autodiff(
    x_shape, kernel, stride, padding, x64
):
  x, w, b = _args(x_shape, kernel)
  ref = lambda *a: _reference(*a, stride, padding)
  y = jax.eval_shape(ref, x, w, b)
  dy = jnp.asarray(np.random.default_rng(1).standard_normal(y.shape))
  want = _value_and_vjp(ref, dy, x, w, b)
  # All-lax, all-matmul, all-taps and all-Winograd (where it fits) run every
  # function of each part; None is the automatic mix.
  winograd = _winograd_fits(kernel, stride, padding)
  for impl in (LAX, MATMUL, TAPS, WINOGRAD, None):
    if impl is None:
      fn = lambda *a: ops.conv2d(*a, stride, padding)
    else:
      fn = lambda *a: ops.conv2d(*a, stride, padding, impl)
    if impl == WINOGRAD and not winograd:
      with pytest.raises(
          ValueError,
          match=r"Winograd's F\(2x2, 3x3\), which needs a 3x3 kernel",
      ):
        fn(x, w, b)
      continue
    _assert_close(_value_and_vjp(fn, dy, x, w, b), want, 1e-12)


@pytest.mark.parametrize(
    "impl, x_shape, kernel, stride, padding",
    [
        (impl, *config)
        for impl in (LAX, MATMUL, TAPS)
        for config in (
            ((1, 5, 4, 2), (3, 3, 2), 2, 1),
            ((2, 2, 2, 2), (3, 3, 3), 1, "SAME"),
        )
    ]
    + [
        (WINOGRAD, (1, 5, 4, 2), (3, 3, 2), 1, 1),
        (WINOGRAD, (2, 3, 2, 2), (3, 3, 3), 1, 2),
    ],
)
def test_finite_differences_second_order(
    impl, x_shape, kernel, stride, padding, x64
):
  f = jax.jit(lambda *a: ops.conv2d(*a, stride, padding, impl))
  test_util.check_grads(f, _args(x_shape, kernel), order=2, modes=["rev"])


@pytest.mark.parametrize(
    "impl, stride",
    [(LAX, 2), (MATMUL, 2), (TAPS, 2), (WINOGRAD, 1)],
    ids=["lax", "matmul", "taps", "winograd"],
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_is_kept_on_every_path(impl, stride, dtype):
  x, w, b = _args((2, 4, 4, 3), (3, 3, 4), dtype=dtype)
  f = lambda *a: jnp.sum(ops.conv2d(*a, stride, "SAME", impl) ** 2)
  y = ops.conv2d(x, w, b, stride, "SAME", impl)
  assert y.dtype == dtype
  ref = _reference(*(a.astype(jnp.float32) for a in (x, w, b)), stride, "SAME")
  assert float(jnp.max(jnp.abs(y.astype(jnp.float32) - ref))) < 0.05 * float(
      jnp.max(jnp.abs(ref))
  )
  assert all(g.dtype == dtype for g in jax.grad(f, (0, 1, 2))(x, w, b))


def test_no_bias_gives_no_bias_cotangent(x64):
  x, w, _ = _args((2, 3, 3, 2), (3, 3, 2))
  y, vjp = jax.vjp(lambda x, w: ops.conv2d(x, w, None), x, w)
  ref, ref_vjp = jax.vjp(lambda x, w: _reference(x, w, 0.0, 1, "SAME"), x, w)
  dy = jnp.ones_like(y)
  _assert_close((y, *vjp(dy)), (ref, *ref_vjp(dy)), 1e-12)


@pytest.mark.parametrize("ynn", [False, True])
def test_choice_depends_on_backend_shape_and_ynn_dots(ynn):
  # The CPU choice, asked for explicitly, so it is checked on any machine.
  choose = functools.partial(_conv_impl.choose_impl, backend="cpu", ynn=ynn)
  # The VGG layers at batch 128 (see benchmarks/conv.py for the timings).
  assert choose((128, 2, 2, 512), (3, 3, 512, 512)) == TAPS
  assert choose((128, 3, 3, 256), (3, 3, 256, 256)) == TAPS
  # 4x4 takes the taps under YNNPACK only; 6x6 keeps XLA's convolution.
  want = TAPS if ynn else LAX
  assert choose((128, 4, 4, 512), (3, 3, 512, 512)) == want
  assert choose((128, 6, 6, 128), (3, 3, 128, 128)) == LAX
  # Large maps: dw as one matmul, unless YNNPACK runs the dots; then 8x8 to
  # 16x16 maps with a lot of work take Winograd's F(2x2, 3x3) for dw.
  big_dw = "winograd" if ynn else "matmul"
  assert choose((128, 8, 8, 256), (3, 3, 256, 256)) == ("lax", "lax", big_dw)
  assert choose((128, 8, 8, 128), (3, 3, 128, 256)) == ("lax", "lax", big_dw)
  assert choose((128, 16, 16, 64), (3, 3, 64, 128)) == ("lax", "lax", big_dw)
  # At batch 32 the gain is not worth the compiler's memory.
  big_dw = "lax" if ynn else "matmul"
  assert choose((32, 16, 16, 64), (3, 3, 64, 128)) == ("lax", "lax", big_dw)
  assert choose((32, 8, 8, 256), (3, 3, 256, 256)) == LAX
  # Not for 32x32 maps, small problems, strides or other kernels (each with
  # work enough otherwise).
  assert choose((128, 32, 32, 64), (3, 3, 64, 64)) == (
      "lax",
      "lax",
      "lax" if ynn else "matmul",
  )
  assert choose((8, 8, 8, 256), (3, 3, 256, 256)) == LAX
  assert choose((128, 16, 16, 256), (3, 3, 256, 256), 2)[2] != "winograd"
  assert choose((32, 8, 8, 256), (5, 5, 256, 256))[2] != "winograd"
  # Thin inputs on many rows want col2im and one matmul either way.
  assert choose((128, 32, 32, 3), (3, 3, 3, 64)) == (
      "lax",
      "matmul",
      "matmul",
  )
  # Small problems keep XLA's convolutions except on tiny maps.
  assert choose((8, 32, 32, 3), (3, 3, 3, 16)) == LAX
  assert choose((8, 8, 8, 16), (3, 3, 16, 32)) == LAX
  # Output pixels decide, so a stride that shrinks the map counts.
  assert choose((1, 6, 6, 64), (3, 3, 64, 64), 2) == TAPS
  for backend in ("gpu", "tpu"):
    assert (
        _conv_impl.choose_impl(
            (128, 2, 2, 512), (3, 3, 512, 512), 1, "SAME", backend, ynn
        )
        == LAX
    )


def test_choice_asks_ynn_dots_by_default():
  shape = ((128, 8, 8, 256), (3, 3, 256, 256))
  seen = _conv_impl.choose_impl(*shape, backend="cpu")
  assert seen == _conv_impl.choose_impl(
      *shape, backend="cpu", ynn=_xla_flags.ynn_dots()
  )


_primitives = jaxprs.primitives


@on_cpu
def test_small_maps_on_cpu_run_as_tap_matmuls_and_reference_as_lax_conv():
  x, w, b = _args((2, 2, 2, 8), (3, 3, 8), dtype=jnp.float32)
  loss = lambda f: lambda *a: jnp.sum(f(*a) ** 2)
  manual = _primitives(jax.grad(loss(ops.conv2d), (0, 1, 2)), x, w, b)
  plain = _primitives(jax.grad(loss(ops.plain(ops.conv2d)), (0, 1, 2)), x, w, b)
  assert "conv_general_dilated" not in manual and "dot_general" in manual
  assert "conv_general_dilated" in plain and "dot_general" not in plain


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, kwargs, match",
    [
        ((4, 4, 3), (3, 3, 3, 2), (2,), {}, r"x must have 4 axes.*\(4, 4, 3\)"),
        ((1, 4, 4, 3), (3, 3, 3), (2,), {}, r"w must have 4 axes"),
        (
            (1, 4, 4, 3),
            (3, 3, 2, 5),
            (5,),
            {},
            r"\(1, 4, 4, 3\).*\(3, 3, 2, 5\)",
        ),
        ((1, 4, 4, 3), (3, 3, 3, 5), (4,), {}, r"b has shape \(4,\).*\(5,\)"),
        ((1, 4, 4, 3), (3, 3, 3, 5), (5,), {"stride": 0}, r"stride.*0"),
        ((1, 4, 4, 3), (3, 3, 3, 5), (5,), {"stride": 1.5}, r"stride"),
        ((1, 4, 4, 3), (3, 3, 3, 5), (5,), {"padding": "FULL"}, r"'FULL'"),
        ((1, 4, 4, 3), (3, 3, 3, 5), (5,), {"padding": -1}, r"padding.*-1"),
        (
            (1, 2, 2, 3),
            (3, 3, 3, 5),
            (5,),
            {"padding": "VALID"},
            r"larger than the padded input.*\(1, 2, 2, 3\)",
        ),
    ],
)
def test_bad_arguments_raise_value_error_naming_shapes(
    x_shape, w_shape, b_shape, kwargs, match
):
  x, w, b = (jnp.ones(s) for s in (x_shape, w_shape, b_shape))
  with pytest.raises(ValueError, match=match):
    ops.conv2d(x, w, b, **kwargs)
  with pytest.raises(ValueError, match=match):
    jax.grad(lambda x: jnp.sum(ops.conv2d(x, w, b, **kwargs)))(x)


@on_accelerator
def test_accelerators_run_xla_convolutions_on_every_map():
  x, w, b = _args((2, 2, 2, 8), (3, 3, 8), dtype=jnp.float32)
  loss = lambda *a: jnp.sum(ops.conv2d(*a) ** 2)
  assert "conv_general_dilated" in _primitives(
      jax.grad(loss, (0, 1, 2)), x, w, b
  )


@pytest.mark.parametrize(
    "impl", [("lax", "lax"), ("lax", "lax", "fft"), ["lax"] * 3]
)
def test_a_bad_impl_raises_value_error_naming_it(impl):
  x, w, b = _args((1, 3, 3, 2), (3, 3, 2), dtype=jnp.float32)
  with pytest.raises(ValueError, match=r"impl must be None or a \(y, dx, dw\)"):
    ops.conv2d(x, w, b, 1, "SAME", impl)
