"""Loading each data source into uint8 arrays, and bad data input."""

import os
import pathlib
import shutil
import socket

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
  with tfds.testing.mock_data(num_examples=9):
    data = input_pipeline.load(conftest.data_config(dataset=name))
  assert data.train_images.shape == (9, *shape)
  assert data.test_images.shape == (9, *shape)
  assert data.train_images.dtype == np.uint8
  assert data.train_labels.dtype == np.int32
  assert data.num_classes == len(data.class_names) == num_classes
  assert data.name == name


def test_tfds_without_network_fails_fast_naming_offline_options(
    tmp_path, monkeypatch
):
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
