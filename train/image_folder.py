"""Reads PATH/split/class/image folders via tfds' ImageFolder, as uint8."""

import os

import numpy as np

# The extensions tfds.folder_dataset.ImageFolder picks up.
_EXTENSIONS = ('.jpg', '.jpeg', '.png')
_LAYOUT = 'PATH/train/<class>/<images> and PATH/test/<class>/<images>'


def check_layout(path: str, need_test: bool = True) -> None:
  """Raises a one-line ValueError unless `path` is a usable image folder.

  The `train` split (and `test` when `need_test`) must exist, hold class
  folders with at least one image, and both splits the same class names.
  """
  if not os.path.isdir(path):
    raise ValueError(
        f'image folder {path!r} does not exist; expected {_LAYOUT}'
    )
  classes = {}
  for split in ('train', 'test') if need_test else ('train',):
    split_dir = os.path.join(path, split)
    if not os.path.isdir(split_dir):
      found = _subfolders(path)
      raise ValueError(
          f'image folder {path!r} has no {split!r} split (found'
          f' {found or "no folders"}); expected {_LAYOUT}'
      )
    classes[split] = _subfolders(split_dir)
    if not any(_has_image(os.path.join(split_dir, c)) for c in classes[split]):
      raise ValueError(
          f'image folder split {split_dir!r} holds no {"/".join(_EXTENSIONS)}'
          f' images in class folders; expected {_LAYOUT}'
      )
  if need_test and classes['train'] != classes['test']:
    only_train = sorted(set(classes['train']) - set(classes['test']))
    only_test = sorted(set(classes['test']) - set(classes['train']))
    raise ValueError(
        f'image folder {path!r}: class folders differ between splits (only in'
        f' train: {only_train}, only in test: {only_test})'
    )


def load(path: str, image_size: int | None = None, need_test: bool = True):
  """Decodes every image of the `train` (and `test`) split once, in parallel.

  Images keep their native size unless `image_size` is set, which resizes
  each to `image_size` x `image_size` (antialiased; aspect ratio not kept).
  tfds' decoder gives every image 3 channels (grayscale replicated); when
  every image of both splits is gray (R = G = B) one channel is kept, so a
  grayscale folder gives C = 1 and a folder with any colour image C = 3.

  Returns:
    `(train, test, class_names)`, each split an `(images, labels)` pair of
    uint8 NHWC and int32 arrays; `test` is None unless `need_test`.
  """
  import tensorflow_datasets as tfds

  check_layout(path, need_test)
  builder = tfds.folder_dataset.ImageFolder(path)
  splits = {}
  for split in ('train', 'test') if need_test else ('train',):
    splits[split] = _read_split(builder, split, image_size)
  sizes = {s: x.shape[1:3] for s, (x, _) in splits.items()}
  if len(set(sizes.values())) > 1:
    raise ValueError(
        f'image folder {path!r}: the splits hold images of different sizes'
        f' ({sizes}); set --config.image_size=N to resize all of them to NxN'
    )
  if all(_is_gray(x) for x, _ in splits.values()):
    splits = {
        s: (np.ascontiguousarray(x[..., :1]), y) for s, (x, y) in splits.items()
    }
  test = splits['test'] if need_test else None
  return splits['train'], test, builder.info.features['label'].names


def _subfolders(path):
  with os.scandir(path) as entries:
    # Hidden folders too: tfds' ImageFolder reads them as classes.
    return sorted(e.name for e in entries if e.is_dir())


def _has_image(path):
  with os.scandir(path) as entries:
    return any(
        e.is_file() and e.name.lower().endswith(_EXTENSIONS) for e in entries
    )


def _is_gray(x):
  return np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(
      x[..., 1], x[..., 2]
  )


def _read_split(builder, split, image_size):
  """Decodes one split with tfds' parallel pipeline into uint8 and int32."""
  import tensorflow as tf

  ds = builder.as_dataset(split=split, as_supervised=True)
  if image_size:
    ds = ds.map(
        lambda x, y: (_resize(x, image_size), y),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
  ds = ds.batch(4096).prefetch(tf.data.AUTOTUNE)
  try:
    images, labels = map(
        np.concatenate, zip(*ds.as_numpy_iterator(), strict=True)
    )
  except tf.errors.InvalidArgumentError as e:
    if 'shapes' not in str(e):  # Only a size mismatch stops batching here.
      raise
    raise ValueError(_size_mismatch(builder, split)) from None
  return images, labels.astype(np.int32)


def _resize(x, image_size):
  import tensorflow as tf

  x = tf.image.resize(x, (image_size, image_size), antialias=True)
  return tf.cast(tf.round(tf.clip_by_value(x, 0, 255)), tf.uint8)


def _size_mismatch(builder, split):
  """Names two files of `split` whose sizes differ (a second, slow pass)."""
  first = None
  for example in builder.as_dataset(split=split).as_numpy_iterator():
    size = 'x'.join(map(str, example['image'].shape[:2]))
    file = example['image/filename'].decode()
    if first is None:
      first = size, file
    elif size != first[0]:
      break
  return (
      f'image folder split {split!r} holds images of different sizes:'
      f' {first[1]} is {first[0]}, {file} is {size}; set'
      ' --config.image_size=N to resize all of them to NxN'
  )
