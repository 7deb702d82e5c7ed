"""The CLIs end to end: `python -m train.mlp` and `train.convnet`."""

import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from absl import flags
from absl.testing import flagsaver
from PIL import Image

from tests.train.conftest import ROOT, subprocess_env
from train import cli, convnet, loop, mlp

# ml_collections loads config files with importlib's deprecated load_module().
pytestmark = pytest.mark.filterwarnings(
    'ignore:the load_module\\(\\) method is deprecated:DeprecationWarning'
)
FAST = ('--noprogress', '--config.log_every=1')


def run_cli(module, monkeypatch, *args):
  """Runs `python -m <module> *args` in this process."""
  argv = [module.__name__, *args]
  # config_flags reads the --config.<key> overrides from sys.argv.
  monkeypatch.setattr(sys, 'argv', argv)
  monkeypatch.chdir(ROOT)
  with flagsaver.flagsaver():
    try:
      module.main(cli.parse_flags(argv))
      return flags.FLAGS.config
    finally:
      flags.FLAGS.unparse_flags()


def rows(workdir):
  text = (pathlib.Path(workdir) / 'metrics.jsonl').read_text()
  return [json.loads(line) for line in text.splitlines()]


def test_mlp_cli_trains_on_digits_with_overrides(tmp_path, monkeypatch):
  config = run_cli(
      mlp,
      monkeypatch,
      '--config=configs/quickstart_mlp.py',
      f'--workdir={tmp_path}',
      '--config.max_steps=4',
      '--config.eval_every=2',
      '--config.model.hidden_units=(8, 4)',
      *FAST,
  )
  assert config.model.hidden_units == (8, 4)
  assert [r['step'] for r in rows(tmp_path)] == [2, 4]
  saved = json.loads((tmp_path / 'config.json').read_text())
  assert saved['model']['hidden_units'] == [8, 4]
  assert (tmp_path / 'loss.png').exists() and (
      tmp_path / 'accuracy.png'
  ).exists()


def test_convnet_cli_trains_on_digits(tmp_path, monkeypatch):
  run_cli(
      convnet,
      monkeypatch,
      '--config=configs/vgg.py',
      f'--workdir={tmp_path}',
      '--config.dataset=digits',
      '--config.model.name=small_convnet',
      '--config.model.padding=SAME',
      '--config.batch_size=16',
      '--config.eval_batch_size=120',
      '--config.max_steps=2',
      '--config.eval_every=2',
      *FAST,
  )
  assert [r['step'] for r in rows(tmp_path)] == [2]


@pytest.mark.parametrize(
    ('module', 'config', 'dataset', 'model'),
    [
        (
            mlp,
            'configs/mnist_mlp.py',
            'mnist',
            '--config.model.hidden_units=(8,)',
        ),
        (
            convnet,
            'configs/vgg.py',
            'cifar10',
            '--config.model.name=small_convnet',
        ),
    ],
)
def test_cli_trains_on_tfds_mock_data(
    tmp_path, monkeypatch, module, config, dataset, model
):
  pytest.importorskip('tensorflow', reason='tfds mock data is a tf.data set')
  with tfds.testing.mock_data(num_examples=64):
    run_cli(
        module,
        monkeypatch,
        f'--config={config}',
        f'--workdir={tmp_path}',
        f'--config.dataset={dataset}',
        '--config.validation_size=0',
        model,
        '--config.batch_size=16',
        '--config.eval_batch_size=32',
        '--config.max_steps=2',
        '--config.eval_every=2',
        *FAST,
    )
  [row] = rows(tmp_path)
  assert row['step'] == 2 and np.isfinite(row['test_loss'])


def test_image_folder_of_unseen_gray_images_trains(tmp_path, monkeypatch):
  # Grayscale 12x10 images, class names no built-in data set has.
  rng = np.random.default_rng(0)
  for split, count in (('train', 6), ('test', 2)):
    for label, name in enumerate(('ant', 'bee', 'cow')):
      folder = tmp_path / 'data' / split / name
      folder.mkdir(parents=True)
      for i in range(count):
        pixels = rng.integers(0, 60, (12, 10)) + 90 * label
        Image.fromarray(pixels.astype(np.uint8), 'L').save(folder / f'{i}.png')
  run_cli(
      mlp,
      monkeypatch,
      '--config=configs/quickstart_mlp.py',
      f'--workdir={tmp_path / "run"}',
      f'--config.dataset=image_folder:{tmp_path / "data"}',
      '--config.batch_size=6',
      '--config.eval_batch_size=6',
      '--config.max_steps=3',
      '--config.eval_every=3',
      *FAST,
  )
  [row] = rows(tmp_path / 'run')
  assert row['step'] == 3 and 0 <= row['test_accuracy'] <= 1


def load_file(path):
  """Imports a configs/ or tests/ file by path, as config_flags does."""
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def quickstart_config(max_steps):
  config = load_file(ROOT / 'configs' / 'quickstart_mlp.py').get_config()
  config.schedule = 'constant'
  config.model.dropout = 0.1
  config.max_steps = max_steps
  return config


def test_sigterm_saves_and_exits_zero_then_resumes_exactly(tmp_path):
  workdir = tmp_path / 'killed'
  command = [
      sys.executable,
      '-m',
      'train.mlp',
      '--config=configs/quickstart_mlp.py',
      f'--workdir={workdir}',
      '--config.schedule=constant',
      '--config.model.dropout=0.1',
      '--config.max_steps=1000000',
      '--config.eval_every=20',
      '--noprogress',
  ]
  process = subprocess.Popen(
      command, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, text=True
  )
  deadline = time.monotonic() + 120
  metrics = workdir / 'metrics.jsonl'
  while not (metrics.exists() and metrics.read_text()):  # the first evaluation
    assert process.poll() is None and time.monotonic() < deadline
    time.sleep(0.2)
  process.send_signal(signal.SIGTERM)
  out, _ = process.communicate(timeout=60)
  assert process.returncode == 0
  assert 'stopped by signal' in out
  stopped = int(max(os.listdir(workdir / 'checkpoints'), key=int))
  assert stopped >= 20

  resumed = loop.train_and_evaluate(
      quickstart_config(stopped + 5), str(workdir), progress=False
  )
  whole = loop.train_and_evaluate(
      quickstart_config(stopped + 5), str(tmp_path / 'whole'), progress=False
  )
  same = jax.tree.map(np.array_equal, whole.state, resumed.state)
  assert all(jax.tree.leaves(same))


EIGHT_DEVICES = textwrap.dedent("""
    import importlib.util, sys
    import jax, numpy as np
    from train import loop
    spec = importlib.util.spec_from_file_location('test_loop', sys.argv[3])
    test_loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_loop)
    assert jax.device_count() == 8
    try:
      loop.train_and_evaluate(test_loop.tiny_config(batch_size=12), sys.argv[1])
    except ValueError as e:
      assert 'divisible by the number of devices (8)' in str(e), e
    else:
      raise AssertionError('batch 12 on 8 devices was accepted')
    run = loop.train_and_evaluate(test_loop.eight_device_config(), sys.argv[1])
    leaves = jax.tree_util.tree_leaves_with_path(run.state)
    np.savez(sys.argv[2], **{jax.tree_util.keystr(p): x for p, x in leaves})
""")


def test_eight_devices_give_the_result_of_one(tmp_path):
  test_loop = load_file(pathlib.Path(__file__).with_name('test_loop.py'))
  subprocess.run(
      [
          sys.executable,
          '-c',
          EIGHT_DEVICES,
          str(tmp_path / 'eight'),
          str(tmp_path / 'eight.npz'),
          str(pathlib.Path(__file__).with_name('test_loop.py')),
      ],
      cwd=ROOT,
      env=subprocess_env(XLA_FLAGS='--xla_force_host_platform_device_count=8'),
      check=True,
  )
  one = loop.train_and_evaluate(
      test_loop.eight_device_config(), str(tmp_path / 'one')
  )
  eight = np.load(tmp_path / 'eight.npz')
  leaves = jax.tree_util.tree_leaves_with_path(one.state)
  assert len(leaves) == len(eight.files)
  for path, x in leaves:
    np.testing.assert_allclose(
        eight[jax.tree_util.keystr(path)], x, rtol=1e-4, atol=1e-5
    )
