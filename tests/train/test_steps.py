"""The compiled train step: `model.vjp` picks every backward, the loss too."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from configs import default
from jaxbp import ops
from train import registry, steps

# Every public op with a hand-written rule (a jax.custom_vjp object).
RULED_OPS = {
    name: getattr(ops, name)
    for name in ops.__all__
    if isinstance(getattr(ops, name), jax.custom_vjp)
}
MODELS = {
    'mlp_batch_norm': (
        default.mlp_model(
            hidden_units=(8, 8), activation='relu', norm='batch', dropout=0.1
        ),
        {
            'linear',
            'batch_norm_with_stats',
            'relu',
            'dropout',
            'softmax_cross_entropy',
        },
    ),
    # Two groups leave a 2x2 map on 8x8 inputs: global average pooling runs.
    'vgg': (
        default.convnet_model('vgg', groups=((4,), (8,))),
        {
            'conv2d',
            'batch_norm_with_stats',
            'relu',
            'max_pool2d',
            'global_avg_pool',
            'linear',
            'softmax_cross_entropy',
        },
    ),
    'small_convnet': (
        default.convnet_model('small_convnet', padding='SAME'),
        {'conv2d', 'relu', 'max_pool2d', 'linear', 'softmax_cross_entropy'},
    ),
}


def spy_on_ops(monkeypatch):
  """Wraps each op's rule and plain forward; returns what calls them.

  Fresh wrappers also defeat JAX's tracing caches, which key on the function.
  """
  calls = {'fwd': set(), 'bwd': set(), 'plain': set()}

  def spy(kind, name, fn):
    def wrapped(*args, **kwargs):
      calls[kind].add(name)
      return fn(*args, **kwargs)

    return wrapped

  for name, op in RULED_OPS.items():
    monkeypatch.setattr(op, 'fwd', spy('fwd', name, op.fwd))
    monkeypatch.setattr(op, 'bwd', spy('bwd', name, op.bwd))
    attribute = 'reference' if getattr(op, 'reference', None) else 'fun'
    plain = getattr(op, attribute)
    monkeypatch.setattr(op, attribute, spy('plain', name, plain))
  return calls


def trace_train_step(model_config, vjp, label_smoothing=0.0):
  """Traces one `steps.train_step` afresh (no jit cache) on 8x8x1 images."""
  model_config = model_config.copy_and_resolve_references()
  model_config.vjp = vjp
  model = registry.model(model_config, (8, 8, 1), 10, seed=0)
  optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
  graphdef, rngs, state = nnx.split((model, optimizer), nnx.RngState, ...)
  mesh = Mesh(jax.devices(), ('data',))
  net = steps.Network(
      graphdef,
      lambda x: x.astype(jnp.float32) / 255.0,
      NamedSharding(mesh, P('data')),
  )
  hp = steps.Hparams(
      seed=0,
      batch_size=8,
      eval_batch_size=8,
      num_classes=10,
      vjp=vjp,
      label_smoothing=label_smoothing,
  )
  images = np.zeros((16, 8, 8, 1), np.uint8)
  labels = np.arange(16, dtype=np.int32) % 10
  args = (hp, net, rngs, state, steps.zero_sums(), np.int32(0), images, labels)
  return jax.make_jaxpr(steps.train_step.__wrapped__, static_argnums=(0, 1))(
      *args
  )


def test_every_op_with_a_rule_is_spied_on():
  assert {
      'softmax_cross_entropy',
      'conv2d',
      'batch_norm',
      'batch_norm_with_stats',
      'dropout',
  } <= set(RULED_OPS)


@pytest.mark.parametrize('name', MODELS)
def test_autodiff_training_calls_no_hand_written_rule(monkeypatch, name):
  model_config, used = MODELS[name]
  calls = spy_on_ops(monkeypatch)
  trace_train_step(model_config, 'autodiff')
  assert calls['fwd'] == calls['bwd'] == set()
  # The step did run through the ops, on their plain forwards: loss included.
  assert calls['plain'] == used


@pytest.mark.parametrize('name', MODELS)
def test_manual_training_calls_the_rule_of_every_op_it_uses(monkeypatch, name):
  model_config, used = MODELS[name]
  calls = spy_on_ops(monkeypatch)
  trace_train_step(model_config, 'manual')
  assert calls['fwd'] == calls['bwd'] == used
  assert calls['plain'] == set()


@pytest.mark.parametrize('vjp', registry.VJPS)
def test_smoothed_labels_follow_the_vjp_too(monkeypatch, vjp):
  calls = spy_on_ops(monkeypatch)
  trace_train_step(MODELS['small_convnet'][0], vjp, label_smoothing=0.1)
  manual = 'softmax_cross_entropy' in calls['bwd']
  assert manual == (vjp == 'manual')


def test_loss_fn_is_the_op_or_its_plain_forward():
  assert steps.loss_fn('manual') is ops.softmax_cross_entropy
  assert steps.loss_fn('autodiff') is ops.plain(ops.softmax_cross_entropy)


def test_hparams_read_the_config_once():
  config = default.get_config()
  config.model.vjp = 'autodiff'
  config.label_smoothing = 0.1
  hp = steps.Hparams.from_config(config, num_classes=10)
  assert hp == steps.Hparams(
      seed=42,
      batch_size=128,
      eval_batch_size=1000,
      num_classes=10,
      vjp='autodiff',
      label_smoothing=0.1,
  )
  hash(hp)  # Static under jit.
