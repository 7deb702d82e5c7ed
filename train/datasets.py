"""Reads a tfds data set, an `image_folder:PATH` or `digits` into uint8."""

import dataclasses
import os
from typing import Any

import numpy as np

from train import image_folder, tfds_data

_NORMALIZATIONS = ('mean_image', 'per_channel', 'unit', 'raw', 'raw_mean_image')
_FOLDER_PREFIX = 'image_folder:'


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Both splits of a data set, in host memory as uint8 NHWC images."""

  train_images: np.ndarray  # uint8 (N, H, W, C), C = 1 or 3
  train_labels: np.ndarray  # int32 (N,)
  test_images: np.ndarray  # the evaluation split (test, or carved validation)
  test_labels: np.ndarray
  num_classes: int
  class_names: tuple[str, ...]
  name: str  # e.g. 'cifar10', 'image_folder:/x', 'digits'
  # JSON-able, for checkpoints to refuse other data: 'dataset' (tfds full
  # name, absolute image folder or 'digits'), split sizes and how the test
  # split was made, class names, image shape.
  identity: dict[str, Any]


def validate(config) -> None:
  """Checks the data keys of `config` cheaply; raises a one-line ValueError.

  Runs before anything long: the data set spec (a registered tfds name, an
  image folder with `train`/`test` splits holding the same classes, or
  `digits`), the normalization kind and the sizes.
  """
  if config.normalization not in _NORMALIZATIONS:
    raise ValueError(
        f'config.normalization={config.normalization!r}: expected one of '
        f'{", ".join(_NORMALIZATIONS)}'
    )
  for key in ('random_crop_padding', 'validation_size', 'seed'):
    value = config[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
      raise ValueError(f'config.{key}={value!r}: expected an integer >= 0')
  if config.image_size is not None and (
      not isinstance(config.image_size, int) or config.image_size <= 0
  ):
    raise ValueError(
        f'config.image_size={config.image_size!r}: expected None (keep the'
        ' size of the images) or a positive integer'
    )
  spec = config.dataset
  if not isinstance(spec, str) or not spec:
    raise ValueError(f'config.dataset={spec!r}: expected a non-empty string')
  if spec.startswith(_FOLDER_PREFIX):
    image_folder.check_layout(
        _folder_path(spec), need_test=config.validation_size == 0
    )
  elif spec != 'digits':
    tfds_data.check_name(spec, config.data_dir)


def load(config) -> Dataset:
  """Validates `config`, then reads each split once into memory as uint8."""
  validate(config)
  spec = config.dataset
  if spec == 'digits':
    source, (train, test, class_names) = spec, _load_digits()
  elif spec.startswith(_FOLDER_PREFIX):
    path = _folder_path(spec)
    source = _FOLDER_PREFIX + os.path.abspath(path)
    need_test = config.validation_size == 0
    train, test, class_names = image_folder.load(
        path, config.image_size, need_test
    )
  else:
    train, test, class_names, source = tfds_data.load(spec, config.data_dir)
  test_split = 'test'
  if config.validation_size:
    train, test = _carve_validation(train, config.validation_size, config.seed)
    test_split = f'validation carved from train with seed {config.seed}'
  return Dataset(
      train_images=train[0],
      train_labels=train[1],
      test_images=test[0],
      test_labels=test[1],
      num_classes=len(class_names),
      class_names=tuple(class_names),
      name=spec,
      identity={
          'dataset': source,
          'train_size': len(train[1]),
          'test_size': len(test[1]),
          'test_split': test_split,
          'class_names': [str(c) for c in class_names],
          'image_shape': list(train[0].shape[1:]),
      },
  )


def _folder_path(spec):
  return os.path.expanduser(spec[len(_FOLDER_PREFIX) :])


def _carve_validation(train, size, seed):
  """Splits `size` examples, drawn from `seed`, off the train split."""
  images, labels = train
  if size >= len(labels):
    raise ValueError(
        f'config.validation_size={size} leaves no training examples: the'
        f' train split has {len(labels)}'
    )
  order = np.random.default_rng(seed).permutation(len(labels))
  held_out, kept = np.sort(order[:size]), np.sort(order[size:])
  return (images[kept], labels[kept]), (images[held_out], labels[held_out])


def _load_digits():
  """sklearn's 8x8 digits, 0..16 scaled to uint8; a fixed 1437/360 split."""
  from sklearn import datasets as sk_datasets
  from sklearn import model_selection

  digits = sk_datasets.load_digits()
  images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
  labels = digits.target.astype(np.int32)
  x_train, x_test, y_train, y_test = model_selection.train_test_split(
      images, labels, test_size=360, random_state=0, stratify=labels
  )
  return (x_train, y_train), (x_test, y_test), [str(c) for c in range(10)]
