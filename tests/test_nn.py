"""jaxbp.nn layers against their flax.nnx twins, in train and eval modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxbp import nn, ops
from jaxbp.gradcheck import jaxprs

VJPS = ["manual", "autodiff"]


def _random(shape, seed=0, dtype=jnp.float32):
  # NumPy draws: jax.random would compile a kernel per shape.
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def _value_and_grads(layer, x):
  """Loss sum(layer(x) * r); returns it with d/dparams and d/dx."""
  r = _random(nnx.clone(layer)(x).shape, seed=99)
  loss = lambda layer, x: jnp.sum(layer(x) * r)
  # One compilation instead of one per primitive: eager is slower here.
  return nnx.jit(nnx.value_and_grad(loss, argnums=(0, 1)))(layer, x)


def _assert_twins(ours, twin, x, atol=1e-5):
  """Same loss, parameter gradients and input gradient."""
  loss, (dparams, dx) = _value_and_grads(ours, x)
  loss_t, (dparams_t, dx_t) = _value_and_grads(twin, x)
  np.testing.assert_allclose(loss, loss_t, rtol=1e-5, atol=atol)
  np.testing.assert_allclose(dx, dx_t, rtol=1e-5, atol=atol)
  grads, grads_t = nnx.to_pure_dict(dparams), nnx.to_pure_dict(dparams_t)
  assert grads.keys() == grads_t.keys()
  for name in grads:
    np.testing.assert_allclose(grads[name], grads_t[name], rtol=1e-5, atol=atol)


def _copy_state(ours, twin):
  """Gives the twin our parameters (and running statistics)."""
  nnx.update(twin, nnx.state(ours))


def test_unknown_vjp_raises_value_error():
  with pytest.raises(ValueError, match=r"'manual'.*'autodiff'"):
    nn.Linear(2, 3, vjp="numpy", rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="got 'torch'"):
    nn.relu(jnp.ones(3), vjp="torch")


@pytest.mark.parametrize("vjp", VJPS)
def test_linear_matches_nnx_linear(vjp):
  ours = nn.Linear(5, 3, vjp=vjp, rngs=nnx.Rngs(0))
  twin = nnx.Linear(5, 3, rngs=nnx.Rngs(0))
  np.testing.assert_array_equal(ours.kernel[...], twin.kernel[...])
  ours.bias[...] = _random((3,), seed=1)
  _copy_state(ours, twin)
  _assert_twins(ours, twin, _random((4, 5)))


@pytest.mark.parametrize("vjp", VJPS)
@pytest.mark.parametrize("stride, padding", [(1, "SAME"), (2, "VALID")])
def test_conv_matches_nnx_conv(vjp, stride, padding):
  ours = nn.Conv(
      3, 4, 3, stride=stride, padding=padding, vjp=vjp, rngs=nnx.Rngs(0)
  )
  twin = nnx.Conv(
      3, 4, (3, 3), strides=stride, padding=padding, rngs=nnx.Rngs(0)
  )
  ours.bias[...] = _random((4,), seed=1)
  _copy_state(ours, twin)
  _assert_twins(ours, twin, _random((2, 7, 7, 3)))


@pytest.mark.parametrize("vjp", VJPS)
def test_layer_norm_matches_nnx_layer_norm(vjp):
  ours = nn.LayerNorm(6, vjp=vjp)
  twin = nnx.LayerNorm(6, epsilon=1e-5, rngs=nnx.Rngs(0))
  ours.scale[...], ours.bias[...] = _random((6,), 1), _random((6,), 2)
  _copy_state(ours, twin)
  _assert_twins(ours, twin, _random((4, 6)))


def _batch_norms(vjp):
  ours = nn.BatchNorm(3, vjp=vjp)
  # PyTorch's momentum 0.1 is nnx's 0.9; nnx's fast variance is less exact.
  twin = nnx.BatchNorm(
      3, momentum=0.9, use_fast_variance=False, rngs=nnx.Rngs(0)
  )
  ours.scale[...], ours.bias[...] = _random((3,), 1), _random((3,), 2)
  ours.mean[...], ours.var[...] = _random((3,), 3), jnp.exp(_random((3,), 4))
  _copy_state(ours, twin)
  return ours, twin


@pytest.mark.parametrize("vjp", VJPS)
def test_batch_norm_train_matches_nnx_and_pytorch_running_stats(vjp):
  ours, twin = _batch_norms(vjp)
  old_mean, old_var = ours.mean[...], ours.var[...]
  x = 2.0 + 3.0 * _random((4, 5, 5, 3))
  _assert_twins(ours, twin, x)
  np.testing.assert_allclose(ours.mean[...], twin.mean[...], rtol=1e-6)
  # nnx takes the biased batch variance, PyTorch (and we) the unbiased one.
  n = 4 * 5 * 5
  biased = (twin.var[...] - 0.9 * old_var) / 0.1
  np.testing.assert_allclose(
      ours.var[...], 0.9 * old_var + 0.1 * biased * n / (n - 1), rtol=1e-5
  )
  axes = (0, 1, 2)
  np.testing.assert_allclose(
      ours.mean[...], 0.9 * old_mean + 0.1 * jnp.mean(x, axes), rtol=1e-5
  )
  np.testing.assert_allclose(
      ours.var[...],
      0.9 * old_var + 0.1 * jnp.var(x, axes, ddof=1),
      rtol=1e-5,
  )


@pytest.mark.parametrize("vjp", VJPS)
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_shift_is_a_bias_before_the_norm(vjp, train):
  shifted, _ = _batch_norms(vjp)
  literal = nnx.clone(shifted)
  if not train:
    shifted.eval(), literal.eval()
  x, s = 2.0 + 3.0 * _random((4, 5, 5, 3)), 4.0 * _random((3,), 5)
  np.testing.assert_allclose(
      shifted(x, shift=s), literal(x + s), rtol=1e-5, atol=1e-5
  )
  for stat in ("mean", "var"):
    np.testing.assert_allclose(
        getattr(shifted, stat)[...], getattr(literal, stat)[...], rtol=1e-5
    )
  r = _random(x.shape, seed=6)
  loss = lambda bn, s: jnp.sum(bn(x, shift=s) * r)
  ds = nnx.jit(nnx.grad(loss, argnums=1))(nnx.clone(shifted), s)
  if train:  # BN(x + s) = BN(x): s reaches only the running mean.
    np.testing.assert_array_equal(ds, 0)
  else:  # An affine map per channel: d/ds = sum of r * scale / std.
    std = jnp.sqrt(shifted.var[...] + 1e-5)
    expected = jnp.sum(r, (0, 1, 2)) * shifted.scale[...] / std
    np.testing.assert_allclose(ds, expected, rtol=1e-5)


def test_batch_norm_shift_of_the_wrong_shape_raises():
  bn = nn.BatchNorm(3)
  with pytest.raises(ValueError, match=r"shift must have shape \(3,\).*\(4,\)"):
    bn(jnp.ones((2, 3)), shift=jnp.zeros(4))


@pytest.mark.parametrize("vjp", VJPS)
def test_batch_norm_eval_uses_running_stats_like_nnx(vjp):
  ours, twin = _batch_norms(vjp)
  ours.eval(), twin.eval()
  before = nnx.to_pure_dict(nnx.state(ours, nnx.BatchStat))
  x = 2.0 + 3.0 * _random((4, 5, 3))
  _assert_twins(ours, twin, x)
  expected = (x - ours.mean[...]) / jnp.sqrt(ours.var[...] + 1e-5)
  np.testing.assert_allclose(
      ours(x), expected * ours.scale[...] + ours.bias[...], rtol=1e-5, atol=1e-5
  )
  after = nnx.to_pure_dict(nnx.state(ours, nnx.BatchStat))
  jax.tree.map(np.testing.assert_array_equal, before, after)


def _reductions(fn, *args):
  return [
      e.primitive.name
      for e in jaxprs.eqns(jax.make_jaxpr(fn)(*args))
      if e.primitive.name.startswith("reduce_")
  ]


@pytest.mark.parametrize("vjp", VJPS)
def test_batch_norm_computes_the_batch_statistics_once(vjp):
  bn = nn.BatchNorm(3, vjp=vjp)
  x = _random((8, 3))
  graphdef, state = nnx.split(bn)
  layer = _reductions(lambda s, x: nnx.merge(graphdef, s)(x), state, x)
  op = nn.select(ops.batch_norm_with_stats, vjp)
  alone = _reductions(lambda x: op(x, bn.scale[...], bn.bias[...]), x)
  assert layer == alone and alone  # The op's mean and variance, no more.


def test_batch_norm_running_stats_stay_out_of_the_gradient():
  bn = nn.BatchNorm(2)
  x = _random((8, 2))
  grads = nnx.grad(lambda bn: jnp.sum(bn(x) ** 3))(bn)
  assert set(nnx.to_pure_dict(grads)) == {"scale", "bias"}
  assert not np.allclose(bn.mean[...], 0.0)


@pytest.mark.parametrize("vjp", VJPS)
def test_dropout_matches_nnx_dropout_in_train_and_is_identity_in_eval(vjp):
  ours = nn.Dropout(0.4, vjp=vjp, rngs=nnx.Rngs(dropout=5))
  twin = nnx.Dropout(0.4, rngs=nnx.Rngs(dropout=5))
  x = _random((16, 8))
  y = ours(x)
  np.testing.assert_allclose(y, twin(x), rtol=1e-6)
  assert 0.2 < float(jnp.mean(y == 0)) < 0.6
  key = jax.random.key(7)
  dx = jax.grad(lambda x: jnp.sum(ours(x, rngs=key)))(x)
  np.testing.assert_allclose(dx, twin(jnp.ones_like(x), rngs=key), rtol=1e-6)
  ours.eval()
  np.testing.assert_array_equal(ours(x), x)


def test_train_and_eval_switch_nested_layers():
  class Block(nnx.Module):

    def __init__(self, rngs):
      self.bn = nn.BatchNorm(3)
      self.drop = nn.Dropout(0.5, rngs=rngs)

  block = Block(nnx.Rngs(0))
  block.eval()
  assert block.bn.use_running_average and block.drop.deterministic
  block.train()
  assert not block.bn.use_running_average and not block.drop.deterministic


@pytest.mark.parametrize(
    "make, x",
    [
        (lambda vjp: nn.Linear(4, 3, vjp=vjp, rngs=nnx.Rngs(0)), (2, 4)),
        (lambda vjp: nn.BatchNorm(4, vjp=vjp), (5, 4)),
        (lambda vjp: nn.LayerNorm(4, vjp=vjp), (5, 4)),
    ],
)
def test_vjp_switch_selects_the_custom_rule(make, x):
  x = _random(x)
  for vjp in VJPS:
    graphdef, state = nnx.split(make(vjp))
    jaxpr = jax.make_jaxpr(lambda s: nnx.merge(graphdef, s)(x))(state)
    assert bool(jaxprs.custom_vjp_calls(jaxpr)) == (vjp == "manual")


def test_bfloat16_compute_keeps_float32_params_and_statistics():
  linear = nn.Linear(4, 3, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  bn = nn.BatchNorm(3, dtype=jnp.bfloat16)
  y = bn(linear(_random((6, 4))))
  assert y.dtype == jnp.bfloat16
  assert linear.kernel[...].dtype == jnp.float32
  assert bn.mean[...].dtype == bn.var[...].dtype == jnp.float32
  grads = nnx.grad(lambda m: jnp.sum(m(_random((6, 4))).astype(float)))(linear)
  assert grads["kernel"][...].dtype == jnp.float32


def test_activation_and_pool_helpers_match_jax_nn():
  x = _random((2, 4, 4, 3))
  for vjp in VJPS:
    np.testing.assert_allclose(
        nn.leaky_relu(x, 0.02, vjp=vjp), jax.nn.leaky_relu(x, 0.02), rtol=1e-6
    )
    np.testing.assert_allclose(nn.elu(x, vjp=vjp), jax.nn.elu(x), rtol=1e-6)
    np.testing.assert_allclose(
        nn.global_avg_pool(x, vjp=vjp), jnp.mean(x, (1, 2)), rtol=1e-6
    )
    np.testing.assert_allclose(
        nn.max_pool2d(x, 2, 2, 0, vjp=vjp),
        x.reshape(2, 2, 2, 2, 2, 3).max((2, 4)),
        rtol=1e-6,
    )


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_dropout_rate_outside_zero_one_raises_like_the_op(rate):
  with pytest.raises(ValueError, match=r"rate must be in \[0, 1\), got"):
    nn.Dropout(rate, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"rate must be in \[0, 1\), got"):
    ops.dropout(jnp.ones(3), jax.random.key(0), rate)


def test_listen_sees_each_layer_output_and_then_stops():
  linear = nn.Linear(4, 3, rngs=nnx.Rngs(0))
  seen = []
  with nn.listen(lambda layer, y: seen.append((layer, y.shape))):
    linear(_random((2, 4)))
    nn.max_pool2d(_random((1, 4, 4, 1)), 2, 2, 0)
  linear(_random((2, 4)))
  assert seen == [(linear, (2, 3)), ("max_pool2d", (1, 2, 2, 1))]


# name -> the kernel's standard deviation for fans (n_in, n_out); zero biases.
KERNEL_STDS = {
    "lecun": lambda n_in, n_out: (1 / n_in) ** 0.5,
    "kaiming": lambda n_in, n_out: (2 / n_in) ** 0.5,
    "normal": lambda n_in, n_out: 0.05,
    "vugrad": lambda n_in, n_out: 2 / (n_in + n_out),
    "pytorch": lambda n_in, n_out: (1 / n_in) ** 0.5 / 3**0.5,
}


@pytest.mark.parametrize("name", KERNEL_STDS)
@pytest.mark.parametrize("layer", ["linear", "conv"])
def test_kernel_inits_draw_the_seeds_statistics(name, layer):
  n_in, n_out = (300, 200) if layer == "linear" else (5 * 5 * 12, 5 * 5 * 8)
  inits = nn.initializers.layer_inits(name, n_in, std=0.05)
  rngs = nnx.Rngs(0)
  if layer == "linear":
    module = nn.Linear(300, 200, **inits, rngs=rngs)
  else:
    module = nn.Conv(12, 8, 5, **inits, rngs=rngs)
  kernel, bias = np.asarray(module.kernel[...]), np.asarray(module.bias[...])
  std = KERNEL_STDS[name](n_in, n_out)
  assert abs(kernel.std() / std - 1) < 0.03
  assert abs(kernel.mean()) < 0.03 * std
  if name == "pytorch":  # Uniform weights and biases, bound 1 / sqrt(n_in).
    bound = n_in**-0.5
    assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
    assert np.abs(bias).min() > 0
  else:
    np.testing.assert_array_equal(bias, 0)
    # Untruncated normals: about 0.27% of draws lie beyond 3 std.
    assert np.mean(np.abs(kernel) > 3 * std) > 0.001


def test_default_kernel_init_is_flax_s_own():
  assert nn.initializers.layer_inits("default", 300) == {}
  ours = nn.Linear(30, 20, rngs=nnx.Rngs(3))
  flax = nnx.Linear(30, 20, rngs=nnx.Rngs(3))
  np.testing.assert_array_equal(ours.kernel[...], flax.kernel[...])
  np.testing.assert_array_equal(ours.bias[...], flax.bias[...])


@pytest.mark.parametrize(
    ("name", "std", "message"),
    [
        (
            "xavier",
            None,
            r"kernel_init='xavier' is unknown; use one of default",
        ),
        (
            "normal",
            None,
            r"kernel_init='normal' needs .* init_std > 0, got None",
        ),
        ("normal", 0.0, r"init_std > 0, got 0.0"),
    ],
)
def test_bad_kernel_init_raises_one_line(name, std, message):
  with pytest.raises(ValueError, match=message) as info:
    nn.initializers.layer_inits(name, 10, std)
  assert "\n" not in str(info.value)
