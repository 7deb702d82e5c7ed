"""models: sizes, shapes, modes, manual vs autodiff gradients, training."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxbp import models, nn, ops
from jaxbp.gradcheck import jaxprs

# name -> (constructor taking vjp and rngs, input shape); small but complete.
MODELS = {
    "mlp_bn_dropout_residual": (
        lambda vjp, rngs: models.MLP(
            48,
            (16, 12, 16),
            10,
            norm="batch",
            dropout=0.2,
            residual=True,
            negative_slope=0.02,
            vjp=vjp,
            rngs=rngs,
        ),
        (8, 4, 4, 3),
    ),
    "mlp_ln_elu": (
        lambda vjp, rngs: models.MLP(
            48,
            (16, 16),
            10,
            activation="elu",
            norm="layer",
            vjp=vjp,
            rngs=rngs,
        ),
        (8, 48),
    ),
    "small_convnet": (
        lambda vjp, rngs: models.SmallConvNet(vjp=vjp, rngs=rngs),
        (4, 32, 32, 3),
    ),
    "vgg": (lambda vjp, rngs: models.VGG(vjp=vjp, rngs=rngs), (2, 32, 32, 3)),
}


@functools.cache
def _built(name):
  # One compiled program for all initializers instead of one per shape.
  return nnx.jit(lambda: MODELS[name][0]("manual", nnx.Rngs(0)))()


def _model(name, vjp="manual"):
  """A fresh copy of a cached model: initialization compiles."""
  model = nnx.clone(_built(name))
  model.set_attributes(vjp=vjp)
  return model


def _params(model):
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _abstract(make):
  """Builds a model as shapes only: counts need no initialization work."""
  return nnx.eval_shape(lambda: make(nnx.Rngs(0)))


def _out_shape(model, shape):
  graphdef, state = nnx.split(model)
  f = lambda state, x: nnx.merge(graphdef, state)(x)
  return jax.eval_shape(
      f, state, jax.ShapeDtypeStruct(shape, jnp.float32)
  ).shape


def _data(shape, dtype=jnp.float32, num_classes=10):
  # NumPy draws: jax.random would compile a kernel per shape and dtype.
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.uniform(size=shape), dtype)
  return x, jnp.asarray(rng.integers(0, num_classes, shape[0]), jnp.int32)


def _loss(model, x, labels):
  # The loss follows the model's vjp: autodiff end to end, or manual.
  loss = nn.select(ops.softmax_cross_entropy, model.vjp)
  return loss(model(x), labels)


def test_parameter_counts_match_the_seeds():
  vgg = _abstract(lambda rngs: models.VGG(rngs=rngs))
  assert _params(vgg) == 9_231_114
  assert _params(_abstract(lambda r: models.SmallConvNet(rngs=r))) == 62_006
  mlp = _abstract(
      lambda r: models.MLP(3072, (100, 50), 10, norm="batch", rngs=r)
  )
  linear = 3072 * 100 + 100 + 100 * 50 + 50 + 50 * 10 + 10
  assert _params(mlp) == linear + 2 * (100 + 50)


@pytest.mark.parametrize(
    "make, shape, num_classes",
    [
        (lambda r: models.VGG(rngs=r), (2, 32, 32, 3), 10),
        (lambda r: models.VGG(100, in_channels=1, rngs=r), (2, 28, 28, 1), 100),
        (lambda r: models.VGG(in_channels=1, rngs=r), (2, 8, 8, 1), 10),
        (lambda r: models.SmallConvNet(rngs=r), (2, 32, 32, 3), 10),
        (
            lambda r: models.SmallConvNet(in_channels=1, image_size=28, rngs=r),
            (2, 28, 28, 1),
            10,
        ),
        (
            lambda r: models.SmallConvNet(
                5, in_channels=1, image_size=8, padding="SAME", rngs=r
            ),
            (2, 8, 8, 1),
            5,
        ),
        (lambda r: models.MLP(64, (32,), 10, rngs=r), (2, 8, 8, 1), 10),
    ],
)
def test_models_return_logits_for_other_image_sizes(make, shape, num_classes):
  assert _out_shape(_abstract(make), shape) == (shape[0], num_classes)


@pytest.mark.parametrize(
    "make",
    [
        lambda r: models.VGG(dtype=jnp.bfloat16, rngs=r),
        lambda r: models.MLP(
            48, (16,), 10, norm="batch", dtype=jnp.bfloat16, rngs=r
        ),
    ],
)
def test_bfloat16_models_keep_float32_params_and_logits(make):
  model = _abstract(make)
  graphdef, state = nnx.split(model)
  f = lambda state, x: jax.grad(
      lambda s: _loss(nnx.merge(graphdef, s), x, jnp.zeros(2, jnp.int32)),
  )(state)
  shape = (2, 32, 32, 3) if isinstance(model, models.VGG) else (2, 48)
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  grads = jax.eval_shape(f, state, x)
  assert "bf16[2," in str(jax.make_jaxpr(f)(state, x))  # Computes in bf16.
  y = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, x)
  assert y.dtype == jnp.float32
  dtypes = {a.dtype for a in jax.tree.leaves(nnx.state(model, nnx.Param))}
  assert dtypes == {jnp.dtype(jnp.float32)}
  assert {g.dtype for g in jax.tree.leaves(grads)} == dtypes


def test_bad_model_configurations_raise_value_errors():
  rngs = nnx.Rngs(0)
  with pytest.raises(ValueError, match="at least 14x14"):
    models.SmallConvNet(image_size=8, rngs=rngs)
  with pytest.raises(
      ValueError, match=r"hidden_units\[0\] == hidden_units\[2\]"
  ):
    models.MLP(4, (3, 5, 4), 2, residual=True, rngs=rngs)
  with pytest.raises(ValueError, match="activation"):
    models.MLP(4, (3,), 2, activation="swish", rngs=rngs)
  with pytest.raises(ValueError, match="vjp"):
    models.VGG(vjp="pytorch", rngs=rngs)


def test_residual_adds_first_hidden_layer_to_third():
  mlp = nnx.jit(
      lambda: models.MLP(
          48,
          (16, 16, 16),
          10,
          activation="relu",
          residual=True,
          rngs=nnx.Rngs(0),
      )
  )()
  x, _ = _data((5, 48))
  h = [x]
  for linear in mlp.hidden:
    h.append(jax.nn.relu(h[-1] @ linear.kernel[...] + linear.bias[...]))
  expected = (h[3] + h[1]) @ mlp.head.kernel[...] + mlp.head.bias[...]
  np.testing.assert_allclose(mlp(x), expected, rtol=1e-5, atol=1e-6)


def test_batch_stats_and_dropout_change_only_in_train_mode():
  mlp = models.MLP(
      48, (16, 16), 10, norm="batch", dropout=0.5, rngs=nnx.Rngs(0)
  )
  x, _ = _data((16, 48))
  stats = lambda: nnx.to_pure_dict(nnx.state(mlp, nnx.BatchStat))
  before = stats()
  assert not np.allclose(mlp(x), mlp(x))  # Fresh dropout masks.
  trained = stats()
  assert not np.allclose(
      before["norms"][0]["mean"], trained["norms"][0]["mean"]
  )
  mlp.eval()
  np.testing.assert_array_equal(mlp(x), mlp(x))
  jax.tree.map(np.testing.assert_array_equal, stats(), trained)


def _cast_floats(model, dtype):
  def cast(a):
    return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a

  state = jax.jit(lambda state: jax.tree.map(cast, state))(nnx.state(model))
  nnx.update(model, state)


@pytest.mark.parametrize("name", MODELS)
def test_manual_gradients_equal_autodiff(name, x64):
  manual, shape = _model(name), MODELS[name][1]
  _cast_floats(manual, jnp.float64)
  autodiff = nnx.clone(manual)  # Same parameters, same dropout keys.
  autodiff.set_attributes(vjp="autodiff")
  x, labels = _data(shape, jnp.float64)
  grad = nnx.jit(nnx.value_and_grad(_loss))
  loss_m, grads_m = grad(manual, x, labels)
  loss_a, grads_a = grad(autodiff, x, labels)
  np.testing.assert_allclose(loss_m, loss_a, rtol=1e-10)
  flat_m = nnx.to_flat_state(grads_m)
  flat_a = dict(nnx.to_flat_state(grads_a))
  assert len(flat_m) == len(flat_a) and len(flat_m) > 0
  for path, g in flat_m:
    g, g_a = g[...], flat_a[path][...]
    assert g.dtype == jnp.float64
    # A bias right before a BatchNorm has an exactly zero gradient: floor it.
    rel = jnp.max(jnp.abs(g - g_a)) / max(jnp.max(jnp.abs(g_a)), 1e-6)
    assert rel <= 1e-8, (path, float(rel))


def test_vgg_manual_gives_the_conv_bias_to_the_running_mean_only(x64):
  manual = _model("vgg")
  _cast_floats(manual, jnp.float64)
  biases = nnx.state(manual, lambda path, _: path[-2:] == ("conv", "bias"))
  rng = np.random.default_rng(7)
  nnx.update(manual, jax.tree.map(lambda b: rng.normal(size=b.shape), biases))
  literal = nnx.clone(manual)
  literal.set_attributes(vjp="autodiff")
  x, labels = _data(MODELS["vgg"][1], jnp.float64)
  grad = nnx.jit(nnx.value_and_grad(_loss))
  _, grads = grad(manual, x, labels)
  grad(literal, x, labels)
  # BN(z + b) = BN(z) in training mode: b's gradient is exactly zero ...
  for path, g in nnx.to_flat_state(grads):
    if path[-2:] == ("conv", "bias"):
      np.testing.assert_array_equal(g[...], 0)
  # ... and b still moves the running means as the literal forward does.
  stats = lambda m: nnx.to_pure_dict(nnx.state(m, nnx.BatchStat))
  close = functools.partial(np.testing.assert_allclose, rtol=1e-10, atol=1e-12)
  jax.tree.map(close, stats(manual), stats(literal))
  assert not np.allclose(manual.groups[0][0].bn.mean[...], 0, atol=0.1)
  manual.eval(), literal.eval()
  close(nnx.jit(lambda m: m(x))(manual), nnx.jit(lambda m: m(x))(literal))


@pytest.mark.parametrize("name", ["mlp_bn_dropout_residual", "small_convnet"])
def test_forward_runs_the_custom_rules_only_when_manual(name):
  x, _ = _data(MODELS[name][1])
  for vjp in ("manual", "autodiff"):
    graphdef, state = nnx.split(_model(name, vjp))
    jaxpr = jax.make_jaxpr(lambda s: nnx.merge(graphdef, s)(x))(state)
    count = len(jaxprs.custom_vjp_calls(jaxpr))
    assert (count > 0) == (vjp == "manual"), (vjp, count)


@pytest.mark.parametrize("name", MODELS)
def test_jit_train_step_lowers_the_loss(name):
  model, shape = _model(name), MODELS[name][1]
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
  x, labels = _data(shape)

  @nnx.jit
  def train_step(model, optimizer, x, labels):
    loss, grads = nnx.value_and_grad(_loss)(model, x, labels)
    optimizer.update(model, grads)
    return loss

  losses = [float(train_step(model, optimizer, x, labels)) for _ in range(8)]
  assert all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0], losses


def test_summary_lists_layers_shapes_and_the_total():
  model = _model("vgg")
  before = nnx.to_pure_dict(nnx.state(model))
  linear_call, pool = vars(nn.Linear)["__call__"], nn.max_pool2d
  table = models.summary(model, (1, 32, 32, 3))
  # Nothing patched or changed: classes, functions, the model's state.
  assert vars(nn.Linear)["__call__"] is linear_call and nn.max_pool2d is pool
  jax.tree.map(
      np.testing.assert_array_equal, nnx.to_pure_dict(nnx.state(model)), before
  )
  assert "trainable parameters: 9,231,114" in table
  assert "logits (1, 10)" in table
  rows = table.splitlines()
  assert sum(" Conv " in r for r in rows) == 8
  assert any(
      r.startswith("groups.0.0.conv ")
      and "(1, 32, 32, 64)" in r
      and r.endswith("1,792")
      for r in rows
  )
  assert any("max_pool2d" in r and "(1, 1, 1, 512)" in r for r in rows)
  assert nn.Linear.__call__.__name__ == "__call__"  # Restored after tracing.
  assert nn.max_pool2d.__name__ == "max_pool2d"


@pytest.mark.parametrize("vjp", ["manual", "autodiff"])
def test_gradient_runs_hand_written_rules_only_when_manual(vjp):
  model = _model("mlp_bn_dropout_residual", vjp)
  x, labels = _data(MODELS["mlp_bn_dropout_residual"][1])
  graphdef, state = nnx.split(model)
  grads = lambda s: nnx.grad(_loss)(nnx.merge(graphdef, s), x, labels)
  with jaxprs.record_backwards() as names:
    jax.make_jaxpr(grads)(state)
  expected = {"linear", "batch_norm_with_stats", "leaky_relu", "dropout"}
  expected.add("softmax_cross_entropy")
  assert set(names) == (expected if vjp == "manual" else set())


def test_small_convnet_dropout_changes_only_train_mode_outputs():
  make = lambda rate: models.SmallConvNet(
      in_channels=1,
      image_size=8,
      padding="SAME",
      dropout=rate,
      rngs=nnx.Rngs(0),
  )
  plain, dropped = make(0.0), make(0.5)
  # Dropout draws from its own stream: the parameters are the same.
  jax.tree.map(
      np.testing.assert_array_equal,
      nnx.state(plain, nnx.Param),
      nnx.state(dropped, nnx.Param),
  )
  x, _ = _data((6, 8, 8, 1))
  assert not np.allclose(dropped(x), plain(x))
  assert not np.allclose(dropped(x), dropped(x))  # Fresh masks each call.
  dropped.eval()
  np.testing.assert_array_equal(dropped(x), plain(x))


@pytest.mark.parametrize(
    ("make", "kernels"),
    [
        (
            lambda init: models.MLP(
                48, (16, 16), 10, kernel_init=init, rngs=nnx.Rngs(0)
            ),
            lambda m: [layer.kernel for layer in (*m.hidden, m.head)],
        ),
        (
            lambda init: models.SmallConvNet(
                in_channels=1,
                image_size=8,
                padding="SAME",
                kernel_init=init,
                rngs=nnx.Rngs(0),
            ),
            lambda m: [
                m.conv1.kernel,
                m.conv2.kernel,
                m.fc1.kernel,
                m.fc3.kernel,
            ],
        ),
        (
            lambda init: models.VGG(
                in_channels=1,
                groups=((4,), (8,)),
                kernel_init=init,
                rngs=nnx.Rngs(0),
            ),
            lambda m: [m.groups[1][0].conv.kernel, m.classifier.kernel],
        ),
    ],
)
def test_kernel_init_reaches_every_layer(make, kernels):
  for layer, kernel in zip(
      kernels(make("default")), kernels(make("vugrad")), strict=True
  ):
    n_in, n_out = np.prod(kernel.shape[:-1]), kernel.shape[-1]
    receptive = np.prod(kernel.shape[:-2])
    scale = 2 / (n_in + n_out * receptive)
    z = np.asarray(kernel[...]) / scale  # vugrad's: 2 / (in + out) N(0, 1)
    assert 0.8 < z.std() < 1.2, z.std()
    assert not np.allclose(layer[...], kernel[...])
  with pytest.raises(ValueError, match="kernel_init='he' is unknown"):
    make("he")
