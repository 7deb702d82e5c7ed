"""Loading each data source into uint8 arrays, and bad data input."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from sklearn import datasets as sk_datasets

from tests.train import conftest
from train import image_folder as image_folder_lib
from train import input_pipeline


def folder_config(path, **overrides):
  return conftest.data_config(dataset=f'image_folder:{path}', **overrides)


def label_of_pixels(images):
  """Recovers conftest.class_pixels' label from each image's pixel range."""
  return images.reshape(len(images), -1).min(axis=1) // 60


@pytest.fixture(scope='module')
def digits():
  return input_pipeline.load(conftest.data_config())


def test_digits_are_sklearns_scaled_to_uint8_in_a_fixed_split(digits):
  assert digits.train_images.shape == (1437, 8, 8, 1)
  assert digits.test_images.shape == (360, 8, 8, 1)
  assert digits.train_images.dtype == np.uint8
  assert digits.train_labels.dtype == np.int32
  assert digits.class_names == tuple('0123456789') and digits.num_classes == 10
  reference = sk_datasets.load_digits()
  expected = np.round(reference.images * 255 / 16).astype(np.uint8)
  images = np.concatenate([digits.train_images, digits.test_images])[..., 0]
  order = np.lexsort(images.reshape(len(images), -1).T)
  expected_order = np.lexsort(expected.reshape(len(expected), -1).T)
  np.testing.assert_array_equal(images[order], expected[expected_order])
  again = input_pipeline.load(conftest.data_config())
  np.testing.assert_array_equal(again.test_images, digits.test_images)


def test_validation_split_is_carved_from_train_by_seed(digits):
  carved = input_pipeline.load(conftest.data_config(validation_size=100))
  assert carved.train_images.shape[0] == 1337
  assert carved.test_images.shape[0] == 100
  rows = lambda x: {r.tobytes() for r in x.reshape(len(x), -1)}
  assert not rows(carved.train_images) & rows(carved.test_images)
  assert rows(carved.train_images) | rows(carved.test_images) == rows(
      digits.train_images
  )
  other = input_pipeline.load(conftest.data_config(validation_size=100, seed=1))
  assert rows(other.test_images) != rows(carved.test_images)
  with pytest.raises(ValueError, match='validation_size=1437 leaves no'):
    input_pipeline.load(conftest.data_config(validation_size=1437))


@pytest.mark.parametrize(
    ('mode', 'ext', 'channels'),
    [('RGB', 'png', 3), ('L', 'png', 1), ('LA', 'png', 1), ('RGBA', 'PNG', 3)],
)
def test_image_folder_reads_pixels_labels_and_channels(
    image_folder, mode, ext, channels
):
  root = image_folder(mode=mode, ext=ext)
  data = input_pipeline.load(folder_config(root))
  assert data.train_images.shape == (12, 6, 5, channels)
  assert data.test_images.shape == (6, 6, 5, channels)
  assert data.train_images.dtype == np.uint8
  assert data.class_names == ('ant', 'bee', 'cow')
  for images, labels in [
      (data.train_images, data.train_labels),
      (data.test_images, data.test_labels),
  ]:
    np.testing.assert_array_equal(label_of_pixels(images), labels)
    assert sorted(np.bincount(labels)) == [len(labels) // 3] * 3


def test_image_folder_mixing_gray_and_colour_gives_rgb(image_folder):
  root = image_folder(mode=lambda split, label, i: 'L' if i % 2 else 'RGB')
  data = input_pipeline.load(folder_config(root))
  assert data.train_images.shape[-1] == 3
  np.testing.assert_array_equal(
      label_of_pixels(data.train_images), data.train_labels
  )


def test_image_folder_of_jpegs_decodes(image_folder):
  root = image_folder(ext='jpg', size=(16, 16))
  data = input_pipeline.load(folder_config(root))
  assert data.train_images.shape == (12, 16, 16, 3)


def test_image_folder_of_mixed_sizes_needs_image_size(image_folder):
  root = image_folder(size=(6, 5))
  odd = conftest.class_pixels(1, (9, 7, 3), np.random.default_rng(0))
  Image.fromarray(odd, 'RGB').save(root / 'train' / 'bee' / 'odd.png')
  with pytest.raises(ValueError, match=r'different sizes: .* is \dx\d, .* is'):
    input_pipeline.load(folder_config(root))
  data = input_pipeline.load(folder_config(root, image_size=4))
  assert data.train_images.shape == (13, 4, 4, 3)
  assert data.test_images.shape == (6, 4, 4, 3)
  np.testing.assert_array_equal(
      label_of_pixels(data.train_images), data.train_labels
  )


def test_image_folder_with_another_size_per_split_is_refused(image_folder):
  root = image_folder(counts=(('train', 2),), size=(6, 5))
  conftest.write_image_folder(root, counts=(('test', 1),), size=(4, 4))
  with pytest.raises(ValueError, match='image_size'):
    input_pipeline.load(folder_config(root))


@pytest.mark.parametrize(
    ('layout', 'message'),
    [
        (None, 'does not exist'),
        ((('train', 1),), "no 'test' split"),
        ((('test', 1),), "no 'train' split"),
        ((('train', 0), ('test', 1)), 'holds no'),
    ],
)
def test_bad_image_folder_layout_is_a_one_line_error(
    image_folder, tmp_path, layout, message
):
  root = image_folder(counts=layout) if layout else tmp_path / 'missing'
  with pytest.raises(ValueError, match=message) as error:
    input_pipeline.validate(folder_config(root))
  assert '\n' not in str(error.value)


def test_image_folder_classes_must_match_between_splits(image_folder):
  root = image_folder(classes=('ant', 'bee'), counts=(('train', 1),))
  conftest.write_image_folder(
      root, classes=('ant', 'cow'), counts=(('test', 1),)
  )
  with pytest.raises(
      ValueError, match=r"only in train: \['bee'\], only in test: \['cow'\]"
  ):
    input_pipeline.validate(folder_config(root))


def test_image_folder_without_test_split_serves_a_validation_split(
    image_folder,
):
  root = image_folder(counts=(('train', 4),))
  data = input_pipeline.load(folder_config(root, validation_size=3))
  assert data.train_images.shape[0] == 9 and data.test_images.shape[0] == 3


@pytest.mark.parametrize(
    ('name', 'shape', 'num_classes'),
    [('mnist', (28, 28, 1), 10), ('cifar10', (32, 32, 3), 10)],
)
def test_tfds_mock_data_loads_like_real_data(name, shape, num_classes):
  pytest.importorskip('tensorflow', reason='tfds mock data is a tf.data set')
  with tfds.testing.mock_data(num_examples=9):
    data = input_pipeline.load(conftest.data_config(dataset=name))
  assert data.train_images.shape == (9, *shape)
  assert data.test_images.shape == (9, *shape)
  assert data.train_images.dtype == np.uint8
  assert data.train_labels.dtype == np.int32
  assert data.num_classes == len(data.class_names) == num_classes
  assert data.name == name
  assert data.identity['dataset'].startswith(f'{name}/')


def test_tfds_without_network_fails_fast_naming_offline_options(
    tmp_path, monkeypatch
):
  pytest.importorskip(
      'tensorflow', reason='without it, preparing is refused before probing'
  )

  def no_network(*args, **kwargs):
    raise OSError('network is unreachable')

  def no_download(*args, **kwargs):
    raise AssertionError('download_and_prepare must not be reached offline')

  monkeypatch.setattr(socket, 'create_connection', no_network)
  monkeypatch.setattr(
      tfds.core.DatasetBuilder, 'download_and_prepare', no_download
  )
  config = conftest.data_config(dataset='mnist', data_dir=str(tmp_path))
  with pytest.raises(ValueError, match='no network') as error:
    input_pipeline.load(config)
  for option in ('image_folder:PATH', 'digits', 'data_dir'):
    assert option in str(error.value)


def test_unknown_tfds_name_lists_close_matches():
  config = conftest.data_config(dataset='cifar_10')
  with pytest.raises(ValueError, match='did you mean cifar10'):
    input_pipeline.validate(config)


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        ({'normalization': 'zca'}, 'config.normalization'),
        ({'random_crop_padding': -1}, 'config.random_crop_padding'),
        ({'validation_size': -5}, 'config.validation_size'),
        ({'image_size': 0}, 'config.image_size'),
        ({'seed': -1}, 'config.seed'),
        ({'dataset': ''}, 'config.dataset'),
    ],
)
def test_bad_data_config_is_a_one_line_error(overrides, message):
  with pytest.raises(ValueError, match=message) as error:
    input_pipeline.validate(conftest.data_config(**overrides))
  assert '\n' not in str(error.value)


def test_image_folder_pixels_are_pillows_in_class_then_file_order(image_folder):
  root = image_folder(size=(9, 7))
  data = input_pipeline.load(folder_config(root))
  with Image.open(root / 'train' / 'ant' / '0.png') as first:
    first.load()
  np.testing.assert_array_equal(data.train_images[0], np.asarray(first))
  with Image.open(root / 'test' / 'cow' / '1.png') as last:
    np.testing.assert_array_equal(data.test_images[-1], np.asarray(last))
  np.testing.assert_array_equal(data.train_labels, np.repeat([0, 1, 2], 4))
  resized = input_pipeline.load(folder_config(root, image_size=4))
  expected = first.resize((4, 4), Image.Resampling.BILINEAR)
  np.testing.assert_array_equal(resized.train_images[0], np.asarray(expected))


def test_image_folder_of_gray_rgb_files_gives_one_channel(image_folder):
  root = image_folder(mode='L')
  for file in root.glob('*/*/*.png'):
    with Image.open(file) as gray:
      rgb = gray.convert('RGB')  # R = G = B
    rgb.save(file)
  data = input_pipeline.load(folder_config(root))
  assert data.train_images.shape == (12, 6, 5, 1)
  np.testing.assert_array_equal(
      label_of_pixels(data.train_images), data.train_labels
  )


def test_image_folder_of_16_bit_pngs_keeps_the_high_byte(image_folder):
  root = image_folder(mode='L')
  for file in root.glob('*/*/*.png'):
    with Image.open(file) as gray:
      pixels = np.asarray(gray).astype(np.uint16) * 257
    Image.fromarray(pixels).save(file)
  with Image.open(file) as wide:
    assert wide.mode.startswith('I')
  data = input_pipeline.load(folder_config(root))
  assert data.train_images.shape == (12, 6, 5, 1)
  np.testing.assert_array_equal(
      label_of_pixels(data.train_images), data.train_labels
  )


def test_image_folder_ignores_hidden_entries(image_folder):
  root = image_folder()
  for split in ('train', 'test'):
    conftest.write_image_folder(
        root / split / '.ipynb_checkpoints', counts=(('x', 1),)
    )
    (root / split / 'ant' / '.DS_Store').write_bytes(b'\0\1')
    (root / split / 'bee' / '.broken.png').write_bytes(b'')
  (root / '.Trash').mkdir()
  data = input_pipeline.load(folder_config(root))
  assert data.class_names == ('ant', 'bee', 'cow')
  assert data.train_images.shape == (12, 6, 5, 3)
  assert data.test_images.shape == (6, 6, 5, 3)


def test_empty_class_folder_is_a_one_line_error_naming_it(image_folder):
  root = image_folder()
  (root / 'test' / 'bee' / '1.png').unlink()
  (root / 'test' / 'bee' / '0.png').rename(root / 'test' / 'bee' / '.0.png')
  with pytest.raises(ValueError, match='holds no') as error:
    input_pipeline.validate(folder_config(root))
  assert repr(str(root / 'test' / 'bee')) in str(error.value)
  assert 'remove the folder' in str(error.value)
  assert '\n' not in str(error.value)


@pytest.mark.parametrize('classes', [('ant',), ()])
def test_image_folder_with_fewer_than_two_classes_is_refused(
    image_folder, classes
):
  root = image_folder(classes=classes)
  for split in ('train', 'test'):
    (root / split / '.ipynb_checkpoints').mkdir(parents=True, exist_ok=True)
  with pytest.raises(ValueError, match='at least 2') as error:
    input_pipeline.validate(folder_config(root))
  assert repr(str(root / 'train')) in str(error.value)
  assert '\n' not in str(error.value)


@pytest.mark.parametrize(
    ('name', 'content'),
    [
        ('empty.png', b''),
        ('garbage.jpg', b'not an image at all'),
        ('truncated.png', None),
    ],
)
def test_bad_image_file_is_a_one_line_error_naming_it(
    image_folder, name, content
):
  root = image_folder(size=(40, 40))
  bad = root / 'train' / 'bee' / name
  good = (root / 'train' / 'bee' / '0.png').read_bytes()
  bad.write_bytes(good[: len(good) // 2] if content is None else content)
  with pytest.raises(ValueError, match='cannot be decoded') as error:
    input_pipeline.load(folder_config(root))
  assert repr(str(bad)) in str(error.value)
  assert 'replace it' in str(error.value) and '\n' not in str(error.value)


def test_cli_names_a_corrupt_image_in_one_line(image_folder, tmp_path):
  root = image_folder()
  (root / 'test' / 'cow' / 'bad.jpg').write_bytes(b'\xff\xd8 broken')
  result = subprocess.run(
      [
          sys.executable,
          '-m',
          'train.mlp',
          '--config=configs/quickstart_mlp.py',
          f'--workdir={tmp_path / "run"}',
          f'--config.dataset=image_folder:{root}',
      ],
      cwd=conftest.ROOT,
      env={**os.environ, 'PYTHONPATH': str(conftest.ROOT)},
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode == 1
  [line] = result.stderr.strip().splitlines()
  assert line.startswith('error: image file') and 'bad.jpg' in line


def test_identity_names_the_data_source_sizes_and_classes(
    digits, image_folder, tmp_path, monkeypatch
):
  assert digits.identity == {
      'dataset': 'digits',
      'train_size': 1437,
      'test_size': 360,
      'test_split': 'test',
      'class_names': list('0123456789'),
      'image_shape': [8, 8, 1],
  }
  carved = input_pipeline.load(conftest.data_config(validation_size=100))
  assert (carved.identity['train_size'], carved.identity['test_size']) == (
      1337,
      100,
  )
  assert 'seed 0' in carved.identity['test_split']
  root = image_folder()
  other = conftest.write_image_folder(tmp_path / 'other', seed=1)
  monkeypatch.chdir(root.parent)
  data = input_pipeline.load(folder_config(root.name))
  assert data.identity['dataset'] == f'image_folder:{root}'
  assert data.identity['class_names'] == ['ant', 'bee', 'cow']
  assert json.loads(json.dumps(data.identity)) == data.identity
  same_shape = input_pipeline.load(folder_config(other))
  assert same_shape.identity != data.identity


CIFAR10 = os.environ.get('JAXBP_CIFAR10', '')


@pytest.mark.skipif(
    not os.path.isdir(CIFAR10), reason='JAXBP_CIFAR10 unset or absent'
)
def test_real_cifar10_folder_validates_and_decodes(tmp_path):
  cifar = pathlib.Path(CIFAR10)
  input_pipeline.validate(folder_config(cifar))
  image_folder_lib.check_layout(str(cifar))
  classes = sorted(p.name for p in (cifar / 'train').iterdir())
  assert len(classes) == 10
  # A few real files, copied: decoding all 60,000 takes too long for a test.
  for split in ('train', 'test'):
    for name in classes[:3]:
      (tmp_path / split / name).mkdir(parents=True)
      for file in sorted((cifar / split / name).iterdir())[:2]:
        shutil.copy(file, tmp_path / split / name)
  data = input_pipeline.load(folder_config(tmp_path))
  assert data.train_images.shape == (6, 32, 32, 3)
  assert data.class_names == tuple(classes[:3])
