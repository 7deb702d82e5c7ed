"""train_and_evaluate on digits: outputs, exact resume, eval masking, bad input."""

import json
import os
import shutil

import jax
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from configs import default
from train import input_pipeline, loop, registry, steps


def tiny_config(**overrides):
  """A 16-unit BN + dropout MLP on digits: a few steps compile and run in ~1 s."""
  config = default.get_config()
  config.model = default.mlp_model(
      hidden_units=(16,), norm='batch', dropout=0.1
  )
  config.dataset = 'digits'
  config.optimizer = 'adam'
  config.learning_rate = 1e-2
  config.batch_size = 32
  config.eval_batch_size = 128  # 360 test images: the last batch is padded
  config.max_steps = 6
  config.eval_every = 3
  config.checkpoint_every = 2
  config.keep_checkpoints = 2
  config.log_every = 1
  model = overrides.pop('model', {})
  config.update(overrides)
  config.model.update(model)
  return config


def eight_device_config(**overrides):
  """`tiny_config` with plain SGD: Adam would magnify float rounding noise."""
  return tiny_config(optimizer='sgd', learning_rate=0.1, **overrides)


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  """An uninterrupted 8-step run, shared by the tests that only read it."""
  workdir = tmp_path_factory.mktemp('finished')
  run = loop.train_and_evaluate(tiny_config(max_steps=8), str(workdir))
  return workdir, run


def test_run_writes_metrics_curves_config_and_checkpoints(finished):
  workdir, run = finished
  rows = [
      json.loads(line)
      for line in (workdir / 'metrics.jsonl').read_text().splitlines()
  ]
  assert [r['step'] for r in rows] == [3, 6, 8]
  assert rows == run.records
  for r in rows:
    assert {
        'train_loss',
        'train_accuracy',
        'test_loss',
        'test_accuracy',
        'images_per_sec',
        'learning_rate',
        'wall_time',
    } <= set(r)
    assert 0 <= r['test_accuracy'] <= 1 and np.isfinite(r['test_loss'])
    # Every one of the 360 test images counts once: accuracy is k / 360.
    assert r['test_accuracy'] * 360 == pytest.approx(
        round(r['test_accuracy'] * 360), abs=1e-3
    )
  assert rows[-1]['train_loss'] < rows[0]['train_loss']
  for name in ('loss.png', 'accuracy.png', 'config.json'):
    assert (workdir / name).stat().st_size > 0
  config = json.loads((workdir / 'config.json').read_text())
  assert config['max_steps'] == 8
  assert sorted(os.listdir(workdir / 'checkpoints')) == ['6', '8']
  assert run.summary.startswith('done: 8 steps, final test accuracy')


def test_resumed_run_is_bit_identical_to_uninterrupted(finished, tmp_path):
  _, whole = finished
  first = loop.train_and_evaluate(tiny_config(max_steps=5), str(tmp_path))
  assert first.step == 5
  resumed = loop.train_and_evaluate(tiny_config(max_steps=8), str(tmp_path))

  assert resumed.step == 8 and resumed.records[-1]['step'] == 8
  same = jax.tree.map(np.array_equal, whole.state, resumed.state)
  assert all(jax.tree.leaves(same))
  assert resumed.records[-1]['test_loss'] == whole.records[-1]['test_loss']


def test_finished_run_rerun_does_not_train_again(finished, tmp_path):
  workdir, done = finished
  shutil.copytree(workdir, tmp_path / 'copy')
  again = loop.train_and_evaluate(
      tiny_config(max_steps=8), str(tmp_path / 'copy')
  )
  assert again.step == 8 and again.records == done.records
  same = jax.tree.map(np.array_equal, done.state, again.state)
  assert all(jax.tree.leaves(same))


def test_evaluation_counts_each_example_once(tmp_path):
  config = tiny_config()
  data = input_pipeline.load(config)
  model = registry.model(config.model, (8, 8, 1), 10, seed=0)
  optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
  graphdef, rngs, state = nnx.split((model, optimizer), nnx.RngState, ...)
  normalize = input_pipeline.make_normalizer(data.train_images, 'per_channel')
  model.eval()
  logits = nnx.jit(lambda m, x: m(normalize(x)))(model, data.test_images)
  expected_loss = float(
      optax.softmax_cross_entropy_with_integer_labels(
          logits, data.test_labels
      ).mean()
  )
  expected_accuracy = float(np.mean(np.argmax(logits, -1) == data.test_labels))
  mesh = Mesh(jax.devices(), ('data',))
  net = steps.Network(graphdef, normalize, NamedSharding(mesh, P('data')))
  for size in (7, 360):
    hp = steps.Hparams(
        seed=0, batch_size=32, eval_batch_size=size, num_classes=10
    )
    loss, accuracy = steps.evaluate(
        hp,
        net,
        rngs,
        state,
        *steps.pad_for_eval(data.test_images, data.test_labels, size),
    )
    assert float(loss) == pytest.approx(expected_loss, rel=1e-5)
    assert float(accuracy) == pytest.approx(expected_accuracy, abs=1e-6)


def test_checkpoint_of_another_model_is_refused_before_training(
    finished, tmp_path
):
  shutil.copytree(finished[0], tmp_path, dirs_exist_ok=True)
  before = (tmp_path / 'metrics.jsonl').read_text()
  config_before = (tmp_path / 'config.json').read_text()
  with pytest.raises(ValueError, match=r'different model \(differs in: model'):
    loop.train_and_evaluate(
        tiny_config(max_steps=12, model={'hidden_units': (32,)}), str(tmp_path)
    )
  assert (tmp_path / 'metrics.jsonl').read_text() == before
  # The refused run did not replace the accepted run's config.
  assert (tmp_path / 'config.json').read_text() == config_before
  assert not [p for p in os.listdir(tmp_path) if p.startswith('.tmp-')]


def test_nan_loss_names_the_step_and_keeps_last_good_checkpoint(tmp_path):
  # A huge plain-SGD step makes the second loss overflow.
  config = tiny_config(
      optimizer='sgd',
      learning_rate=1e30,
      checkpoint_every=1,
      model={'norm': None, 'dropout': 0.0},
  )
  with pytest.raises(
      FloatingPointError, match=r'NaN or Inf at step 2;.*step 1'
  ):
    loop.train_and_evaluate(config, str(tmp_path))
  assert os.listdir(tmp_path / 'checkpoints') == ['1']


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        ({'optimizer': 'adagrad'}, 'config.optimizer'),
        ({'schedule': 'linear'}, 'config.schedule'),
        ({'learning_rate': 0.0}, 'config.learning_rate'),
        ({'learning_rate': -1e-3}, 'config.learning_rate'),
        ({'batch_size': 0}, 'config.batch_size'),
        ({'max_steps': -5}, 'config.max_steps'),
        ({'eval_every': 0}, 'config.eval_every'),
        ({'label_smoothing': 1.0}, 'config.label_smoothing'),
        ({'model': {'name': 'resnet'}}, 'config.model.name'),
        ({'model': {'vjp': 'numeric'}}, 'config.model.vjp'),
        ({'model': {'hidden_units': (16, 0)}}, 'config.model.hidden_units'),
        ({'dataset': 'cifar11'}, 'cifar10'),
        ({'dataset': 'image_folder:/no/such/folder'}, 'does not exist'),
        ({'normalization': 'zca'}, 'normalization'),
    ],
)
def test_bad_config_fails_before_anything_is_written(
    tmp_path, overrides, message
):
  workdir = tmp_path / 'run'
  with pytest.raises(ValueError, match=message):
    loop.train_and_evaluate(tiny_config(**overrides), str(workdir))
  assert not workdir.exists()


def test_image_folder_with_inconsistent_classes_is_refused(tmp_path):
  for split, names in (('train', ('cat', 'dog')), ('test', ('cat', 'emu'))):
    for name in names:
      (tmp_path / 'data' / split / name).mkdir(parents=True)
      (tmp_path / 'data' / split / name / '0.png').write_bytes(b'')
  config = tiny_config(dataset=f'image_folder:{tmp_path / "data"}')
  with pytest.raises(ValueError, match='differ between splits'):
    loop.train_and_evaluate(config, str(tmp_path / 'run'))
