"""Reads a tfds data set, an `image_folder:PATH` or `digits` into uint8."""

import dataclasses
import difflib
import importlib.util
import os
import socket
from typing import Any

import numpy as np

from train import image_folder

_NORMALIZATIONS = ('mean_image', 'per_channel', 'unit')
_FOLDER_PREFIX = 'image_folder:'
_OFFLINE_OPTIONS = (
    'offline options: --config.dataset=image_folder:PATH (PATH/{train,test}/'
    '<class>/<images>), --config.dataset=digits (bundled with scikit-learn), '
    'or --config.data_dir=DIR holding an already prepared tfds copy'
    ' (one prepared as ArrayRecord reads without TensorFlow)'
)
_INSTALL_TF = "pip install 'jaxbp[tf]'"
# Where tfds fetches prepared data sets; a probe with a short timeout replaces
# tfds' own retry loop, which spends minutes before failing offline.
_PROBE_HOST, _PROBE_PORT, _PROBE_TIMEOUT_S = 'storage.googleapis.com', 443, 3.0


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
    _check_tfds_name(spec, config.data_dir)


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
    train, test, class_names, source = _load_tfds(spec, config.data_dir)
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


def _check_tfds_name(name, data_dir):
  """Raises unless tfds can give `name`, naming close matches.

  tfds must know `name` or `data_dir` hold it; without TensorFlow, it must be
  prepared already as ArrayRecord (or Parquet).
  """
  import tensorflow_datasets as tfds

  names = tfds.list_builders(with_community_datasets=False)
  base = name.split(':')[0].split('/')[0]
  prepared = data_dir and os.path.isdir(os.path.join(data_dir, base))
  if base not in names and not prepared:
    close = difflib.get_close_matches(base, names, n=3, cutoff=0.6)
    hint = f'did you mean {", ".join(close)}? ' if close else ''
    raise ValueError(
        f'config.dataset={name!r} is no tfds data set, "image_folder:PATH"'
        f' or "digits"; {hint}{_OFFLINE_OPTIONS}'
    )
  if importlib.util.find_spec('tensorflow') is None:
    _check_readable_without_tensorflow(
        tfds.builder(name, data_dir=data_dir), name
    )


def _network_reachable() -> bool:
  try:
    address = (_PROBE_HOST, _PROBE_PORT)
    socket.create_connection(address, timeout=_PROBE_TIMEOUT_S).close()
  except OSError:
    return False
  return True


def _load_tfds(name, data_dir):
  """Reads tfds data set `name`, prepared or (with TensorFlow) prepared now.

  A data set prepared as ArrayRecord (or Parquet) is read through
  `as_data_source`, without TensorFlow; any other needs TensorFlow, which
  prepares it first if needed.

  Returns:
    `(train, test, class_names, full_name)`.
  """
  import tensorflow_datasets as tfds

  builder = tfds.builder(name, data_dir=data_dir)
  image_key, label_key = builder.info.supervised_keys
  image_feature = builder.info.features[image_key]
  if image_feature.np_dtype != np.uint8 or None in image_feature.shape:
    raise ValueError(
        f'tfds data set {name!r} has {image_feature.np_dtype} images of shape'
        f' {image_feature.shape}; expected uint8 images of one fixed size'
    )
  class_names = builder.info.features[label_key].names
  sources = _data_sources(builder)
  if sources is None:
    splits = _read_with_tensorflow(builder, name)
  else:
    splits = _read_data_sources(sources, image_key, label_key)
  return splits[0], splits[1], class_names, builder.info.full_name


def _check_readable_without_tensorflow(builder, name):
  """Raises unless `builder` is prepared in a format read without TF."""
  if _data_sources(builder) is not None:
    return
  state = (
      f'is prepared in {builder.data_dir} in a format only TensorFlow reads'
      " (prepare it with file_format='array_record' to read it without)"
      if _is_prepared(builder)
      else (
          f'is not prepared in {builder.data_dir}; preparing it needs'
          ' TensorFlow'
      )
  )
  raise ValueError(
      f'tfds data set {name!r} {state}, which is not installed:'
      f' {_INSTALL_TF}; or {_OFFLINE_OPTIONS}'
  )


def _is_prepared(builder):
  # What builder.is_prepared() checks, without its warning when unprepared.
  return (builder.data_path / 'dataset_info.json').exists()


def _data_sources(builder):
  """The train and test splits' data sources; None unless prepared so."""
  if not _is_prepared(builder):
    return None
  try:
    return builder.as_data_source(split=['train', 'test'])
  except NotImplementedError:  # Prepared as TFRecord: no random access.
    return None


def _read_data_sources(sources, image_key, label_key):
  splits = []
  for source in sources:
    examples = source.__getitems__(range(len(source)))
    images = np.stack([e[image_key] for e in examples])
    labels = np.asarray([e[label_key] for e in examples], np.int32)
    splits.append((images, labels))
  return splits


def _read_with_tensorflow(builder, name):
  """Both splits through `as_dataset`, preparing them first if needed."""
  import tensorflow_datasets as tfds

  try:
    # Reads nothing yet; tfds.testing.mock_data replaces it, so mocked and
    # real data sets take the same path.
    builder.as_dataset(split='train')
  except AssertionError:  # Not prepared under data_dir.
    if not _network_reachable():
      raise ValueError(
          f'tfds data set {name!r} is not prepared in {builder.data_dir} and'
          f' {_PROBE_HOST} is unreachable (no network); {_OFFLINE_OPTIONS}'
      ) from None
    builder.download_and_prepare()
  splits = []
  for split in ('train', 'test'):
    ds = builder.as_dataset(split=split, as_supervised=True).batch(8192)
    images, labels = map(np.concatenate, zip(*tfds.as_numpy(ds), strict=True))
    splits.append((images, labels.astype(np.int32)))
  return splits
