"""The seeds' protocols as config keys: loss reduction, checks, configs."""

import ast
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from configs import default, mlp, mlp_2021, mnist_mlp
from train import build, loop, registry, steps, study


@pytest.mark.parametrize('vjp', registry.VJPS)
def test_summed_loss_has_batch_size_times_the_mean_gradient(vjp, x64):
  logits = jax.random.normal(jax.random.key(0), (6, 10), jnp.float64)
  labels = jnp.arange(6) % 10

  def grad(reduction):
    hp = steps.Hparams(1, 6, 6, 10, vjp=vjp, loss_reduction=reduction)
    loss = lambda z: steps.train_loss(hp, z, labels)[0]
    return jax.grad(loss)(logits), jax.make_jaxpr(loss)(logits)

  (mean, mean_jaxpr), (summed, _) = grad('mean'), grad('sum')
  np.testing.assert_allclose(summed, 6 * mean, rtol=1e-12)
  assert ('custom_vjp_call' in str(mean_jaxpr)) == (vjp == 'manual')
  hp = steps.Hparams(1, 6, 6, 10, vjp=vjp, loss_reduction='sum')
  value, per_example = steps.train_loss(hp, logits, labels)
  expected = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  np.testing.assert_allclose(value, expected.sum(), rtol=1e-12)
  np.testing.assert_allclose(per_example, expected.mean(), rtol=1e-12)


def _one_step(vjp, reduction, learning_rate):
  """One train step of a tiny MLP on 8x8x1 images: (params, sums)."""
  model_config = default.mlp_model(hidden_units=(16,), vjp=vjp)
  model = registry.model(model_config, (8, 8, 1), 10, seed=0)
  optimizer = nnx.Optimizer(model, optax.sgd(learning_rate), wrt=nnx.Param)
  graphdef, rngs, state = nnx.split((model, optimizer), nnx.RngState, ...)
  mesh = Mesh(jax.devices(), ('data',))
  normalize = lambda x: x.astype(jnp.float32) / 255.0
  net = steps.Network(graphdef, normalize, NamedSharding(mesh, P('data')))
  hp = steps.Hparams(0, 8, 8, 10, vjp=vjp, loss_reduction=reduction)
  images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1), np.uint8)
  labels = np.arange(16, dtype=np.int32) % 10
  state, sums = steps.train_step(
      hp, net, rngs, state, steps.zero_sums(), np.int32(0), images, labels
  )
  model, _ = nnx.merge(graphdef, rngs, state)
  return nnx.to_pure_dict(nnx.state(model, nnx.Param)), jax.device_get(sums)


@pytest.mark.parametrize('vjp', registry.VJPS)
def test_summed_loss_steps_as_the_mean_at_batch_size_times_the_rate(vjp):
  summed, summed_sums = _one_step(vjp, 'sum', 0.01)
  mean, mean_sums = _one_step(vjp, 'mean', 0.01 * 8)
  jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
      summed,
      mean,
  )
  # The logged train loss is the per-example mean either way.
  assert summed_sums['loss'] == mean_sums['loss'] > 1.0


def _digits_config(**overrides):
  config = default.get_config()
  study.apply(config, overrides, 'test')
  return config


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        ({'loss_reduction': 'avg'}, r"loss_reduction='avg': expected one of"),
        ({'batch_order': 'random'}, r"batch_order='random': expected one of"),
        ({'normalization': 'raw01'}, r"normalization='raw01': expected one"),
        (
            {'model.kernel_init': 'xavier'},
            r"config.model.kernel_init='xavier' is unknown; use one of",
        ),
        (
            {'model.kernel_init': 'normal', 'model.init_std': 0.0},
            r"config.model.kernel_init='normal' needs .* init_std > 0",
        ),
        ({'model.dropout': 1.0}, r'config.model.dropout must be in \[0, 1\)'),
    ],
)
def test_bad_protocol_keys_fail_in_one_line(overrides, message):
  with pytest.raises(ValueError, match=message) as info:
    build.validate_config(_digits_config(**overrides))
  assert '\n' not in str(info.value)


def test_dropout_on_a_model_without_it_fails_in_one_line():
  config = default.get_config()
  config.model = default.convnet_model('vgg', dropout=0.1)
  with pytest.raises(ValueError, match=r'dropout=0.1: vgg has no dropout'):
    build.validate_config(config)
  config.model = default.convnet_model('small_convnet', dropout=1.5)
  with pytest.raises(ValueError, match=r'dropout must be in \[0, 1\)'):
    build.validate_config(config)


def test_mnist_mlp_is_vugrad_s_literal_protocol():
  config = mnist_mlp.get_config()
  assert tuple(config.model.hidden_units) == (4 * 784,)
  assert (config.model.activation, config.model.kernel_init) == (
      'sigmoid',
      'vugrad',
  )
  assert (config.normalization, config.batch_order) == ('raw', 'in_order')
  assert (config.loss_reduction, config.learning_rate) == ('sum', 1e-4)
  assert (config.batch_size, config.validation_size) == (128, 5000)
  assert config.max_steps == 20 * (55_000 // 128)  # 20 epochs, whole batches
  config.dataset = 'digits'  # MNIST itself may need preparing (TensorFlow).
  build.validate_config(config)


def _documented_overrides(module, marker):
  """The `--config.k=v` flags of the command after `marker` in a docstring."""
  text = module.__doc__.split(marker, 1)[1].split('\n\n', 2)[1]
  overrides = {}
  for key, value in re.findall(r'--config\.([\w.]+)=(\S+)', text):
    try:
      overrides[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      overrides[key] = value
  return overrides


def test_mlp_docstring_reaches_the_literal_2019_protocol():
  overrides = _documented_overrides(mlp, 'The literal 2019 protocol')
  assert overrides.pop('dataset').startswith('image_folder:')
  config = mlp.get_config()
  study.apply(config, overrides, 'configs/mlp.py docstring')
  assert config.normalization == 'raw_mean_image'
  assert (config.model.kernel_init, config.model.init_std) == ('normal', 1e-4)
  assert (config.batch_order, config.loss_reduction) == ('sample', 'mean')
  assert config.learning_rate == 2e-3
  config.dataset = 'digits'
  build.validate_config(config)


def test_mlp_2021_initialises_as_the_seeds_do():
  assert mlp_2021.get_config().model.kernel_init == 'kaiming'


def test_vugrad_protocol_trains_on_digits(tmp_path):
  """Raw pixels, vugrad init, lr 1e-4 on the summed loss, batches in order."""
  config = mnist_mlp.get_config()
  study.apply(
      config,
      {
          'dataset': 'digits',
          'validation_size': 0,
          'model.hidden_units': (256,),  # vugrad's 4 x the 64 pixels
          'max_steps': 44,
          'eval_every': 22,
          'checkpoint_every': 44,
          'eval_batch_size': 360,
      },
      'test',
  )
  config.lock()
  loop.train_and_evaluate(config, str(tmp_path), progress=False)
  text = (tmp_path / 'metrics.jsonl').read_text()
  rows = [json.loads(line) for line in text.splitlines()]
  assert rows[0]['train_loss'] > rows[-1]['train_loss']
  assert rows[-1]['test_accuracy'] > 0.8
