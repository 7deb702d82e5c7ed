"""Without TensorFlow: train/ imports, trains on digits and image folders, reads ArrayRecord."""

import json
import os
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.train import conftest

# Hides TensorFlow as an environment without it would: `import tensorflow`
# fails and `importlib.util.find_spec('tensorflow')` is None (tfds and etils
# ask the latter; `sys.modules['tensorflow'] = None` would fool neither).
HIDE_TENSORFLOW = textwrap.dedent("""
    import sys

    class _Hide:
      def __init__(self, finder):
        self._finder = finder

      def __getattr__(self, name):
        return getattr(self._finder, name)

      def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'tensorflow':
          return None
        find = getattr(self._finder, 'find_spec', None)
        return find(name, path, target) if find else None

      def find_distributions(self, *args, **kwargs):
        find = getattr(self._finder, 'find_distributions', None)
        return (
            d for d in (find(*args, **kwargs) if find else ())
            if not (d.metadata['Name'] or '').lower().startswith('tensorflow')
        )

    sys.meta_path[:] = [_Hide(f) for f in sys.meta_path]
""")


def run_without_tensorflow(code, timeout=300):
  """Runs `code` in a fresh Python that cannot import TensorFlow."""
  env = {
      **os.environ,
      'PYTHONPATH': str(conftest.ROOT),
      'JAX_COMPILATION_CACHE_DIR': jax.config.jax_compilation_cache_dir,
      'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0.2',
      'TF_CPP_MIN_LOG_LEVEL': '2',
  }
  script = HIDE_TENSORFLOW + textwrap.dedent(code)
  return subprocess.run(
      [sys.executable, '-c', script],
      cwd=conftest.ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=timeout,
  )


def run_cli_without_tensorflow(*args):
  """`python -m train.mlp *args` in a Python that cannot import TensorFlow."""
  return run_without_tensorflow(f"""
      import runpy
      sys.argv = ['train.mlp', *{list(args)!r}]
      runpy.run_module('train.mlp', run_name='__main__', alter_sys=True)
  """)


def test_hiding_tensorflow_works_as_if_absent():
  result = run_without_tensorflow("""
      import importlib.util
      assert importlib.util.find_spec('tensorflow') is None
      try:
        import tensorflow
      except ModuleNotFoundError:
        print('absent')
  """)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == 'absent'


def test_every_train_module_imports_and_loads_data(image_folder):
  root = image_folder()
  result = run_without_tensorflow(f"""
      import importlib, pkgutil
      import train
      for module in pkgutil.iter_modules(train.__path__):
        importlib.import_module('train.' + module.name)
      from tests.train import conftest
      from train import datasets
      digits = datasets.load(conftest.data_config())
      folder = datasets.load(
          conftest.data_config(dataset='image_folder:{root}', image_size=4)
      )
      print(digits.train_images.shape, folder.train_images.shape)
      assert 'tensorflow' not in sys.modules
  """)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split('\n')[-2] == '(1437, 8, 8, 1) (12, 4, 4, 3)'


@pytest.mark.parametrize('dataset', ['digits', 'image_folder'])
def test_cli_trains_without_tensorflow(image_folder, tmp_path, dataset):
  spec = f'image_folder:{image_folder()}' if dataset == 'image_folder' else ''
  result = run_cli_without_tensorflow(
      '--config=configs/quickstart_mlp.py',
      f'--workdir={tmp_path / "run"}',
      '--config.max_steps=4',
      '--config.eval_every=2',
      '--config.batch_size=6',
      '--config.eval_batch_size=6',
      '--config.model.hidden_units=(8,)',
      '--noprogress',
      *([f'--config.dataset={spec}'] if spec else []),
  )
  assert result.returncode == 0, result.stderr
  rows = (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()
  assert [json.loads(row)['step'] for row in rows] == [2, 4]


def test_cli_names_jaxbp_tf_for_an_unprepared_tfds_name(tmp_path):
  start = time.monotonic()
  result = run_cli_without_tensorflow(
      '--config=configs/quickstart_mlp.py',
      f'--workdir={tmp_path / "run"}',
      '--config.dataset=cifar10',
      f'--config.data_dir={tmp_path / "tfds"}',
  )
  assert time.monotonic() - start < 60  # Python, jax and tfds start-up.
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  [line] = result.stderr.strip().splitlines()
  assert line.startswith("error: tfds data set 'cifar10' is not prepared")
  for option in ("pip install 'jaxbp[tf]'", 'image_folder:PATH', 'digits'):
    assert option in line
  assert '--config.data_dir' in line


class JaxbpTinyShapes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A tiny data set of 6x5 RGB images in three classes, made offline."""

  VERSION = tfds.core.Version('1.0.0')
  # Raw uint8 tensors, or PNG-encoded images (preparing those needs TF).
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name='tensor'),
      tfds.core.BuilderConfig(name='image'),
  ]

  def _info(self):
    image = (
        tfds.features.Tensor(shape=(6, 5, 3), dtype=np.uint8)
        if self.builder_config.name == 'tensor'
        else tfds.features.Image(shape=(6, 5, 3))
    )
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            'image': image,
            'label': tfds.features.ClassLabel(names=['ant', 'bee', 'cow']),
        }),
        supervised_keys=('image', 'label'),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {
        'train': self._generate_examples('train'),
        'test': self._generate_examples('test'),
    }

  def _generate_examples(self, split):
    for i, (image, label) in enumerate(zip(*tiny_split(split), strict=True)):
      yield i, {'image': image, 'label': label}


def tiny_split(split):
  rng = np.random.default_rng(0 if split == 'train' else 1)
  labels = np.arange({'train': 9, 'test': 6}[split]) % 3
  images = np.stack([conftest.class_pixels(y, (6, 5, 3), rng) for y in labels])
  return images, labels


def prepare_tiny(data_dir, image_feature, file_format):
  if image_feature == 'image' or file_format == 'tfrecord':
    pytest.importorskip('tensorflow', reason='preparing this needs TensorFlow')
  builder = JaxbpTinyShapes(
      config=image_feature, data_dir=str(data_dir), file_format=file_format
  )
  builder.download_and_prepare()
  return f'jaxbp_tiny_shapes/{image_feature}'


@pytest.mark.parametrize('image_feature', ['tensor', 'image'])
def test_prepared_array_record_reads_without_tensorflow(
    tmp_path, image_feature
):
  name = prepare_tiny(tmp_path / 'tfds', image_feature, 'array_record')
  result = run_without_tensorflow(f"""
      import json
      import numpy as np
      from tests.train import conftest
      from train import datasets
      data = datasets.load(conftest.data_config(
          dataset='{name}', data_dir='{tmp_path / "tfds"}'
      ))
      np.savez('{tmp_path / "data.npz"}', x=data.train_images,
               y=data.train_labels, tx=data.test_images, ty=data.test_labels)
      print(json.dumps(data.identity))
      assert 'tensorflow' not in sys.modules
  """)
  assert result.returncode == 0, result.stderr
  data = np.load(tmp_path / 'data.npz')
  images, labels = tiny_split('train')
  by_pixels = lambda x: sorted(range(len(x)), key=lambda i: x[i].tobytes())
  order, expected = by_pixels(data['x']), by_pixels(images)
  np.testing.assert_array_equal(data['x'][order], images[expected])
  np.testing.assert_array_equal(data['y'][order], labels[expected])
  assert data['x'].dtype == np.uint8 and data['y'].dtype == np.int32
  assert data['tx'].shape == (6, 6, 5, 3) and data['ty'].dtype == np.int32
  identity = json.loads(result.stdout.strip().splitlines()[-1])
  assert identity['dataset'] == f'{name}/1.0.0'
  assert identity['class_names'] == ['ant', 'bee', 'cow']
  assert (identity['train_size'], identity['test_size']) == (9, 6)


def test_prepared_tfrecord_without_tensorflow_names_array_record(tmp_path):
  name = prepare_tiny(tmp_path / 'tfds', 'tensor', 'tfrecord')
  result = run_without_tensorflow(f"""
      from tests.train import conftest
      from train import datasets
      try:
        datasets.load(conftest.data_config(
            dataset='{name}', data_dir='{tmp_path / "tfds"}'
        ))
      except ValueError as e:
        print(e)
  """)
  assert result.returncode == 0, result.stderr
  line = result.stdout.strip().splitlines()[-1]
  assert "file_format='array_record'" in line
  assert "pip install 'jaxbp[tf]'" in line and 'image_folder:PATH' in line
