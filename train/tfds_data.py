"""tfds data sets: prepared ones read without TensorFlow where possible."""

import difflib
import importlib.util
import os
import socket

import numpy as np

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


def check_name(name, data_dir):
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


def load(name, data_dir):
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
  import tensorflow as tf
  import tensorflow_datasets as tfds

  _keep_tensorflow_off_accelerators(tf)

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


def _keep_tensorflow_off_accelerators(tf) -> None:
  """TF only decodes here; the GPU belongs to JAX (TF would reserve its memory)."""
  try:
    tf.config.set_visible_devices([], 'GPU')
  except RuntimeError:  # TF's devices were initialized already, by the user.
    pass
