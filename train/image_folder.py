"""Reads PATH/split/class/image folders with Pillow, as uint8 NHWC arrays."""

import concurrent.futures
import os

import numpy as np
from PIL import Image

# The extensions tfds.folder_dataset.ImageFolder picked up, in any case.
_EXTENSIONS = ('.jpg', '.jpeg', '.png')
_LAYOUT = 'PATH/train/<class>/<images> and PATH/test/<class>/<images>'
_GRAY_MODES = ('1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16B', 'I;16L', 'F')


def check_layout(path: str, need_test: bool = True) -> None:
  """Raises a one-line ValueError unless `path` is a usable image folder.

  The `train` split (and `test` when `need_test`) must exist and hold at
  least two class folders, each with at least one image, and both splits
  the same class names. Hidden entries (names starting with '.', such as
  `.ipynb_checkpoints/` or `.DS_Store`) are neither classes nor images.
  """
  _scan(path, need_test)


def load(path: str, image_size: int | None = None, need_test: bool = True):
  """Decodes every image of the `train` (and `test`) split once, in parallel.

  Classes are the sorted names of the class folders; a split's examples are
  in class order, then file name order. Images keep their native size unless
  `image_size` is set, which resizes each to `image_size` x `image_size`
  (bilinear, antialiased; aspect ratio not kept). Alpha is dropped. When
  every image of both splits is gray (a gray mode, or R = G = B) one channel
  is kept, so a grayscale folder gives C = 1 and any colour image C = 3.

  Returns:
    `(train, test, class_names)`, each split an `(images, labels)` pair of
    uint8 NHWC and int32 arrays; `test` is None unless `need_test`.
  """
  files, class_names = _scan(path, need_test)
  decoded = {}
  # Pillow releases the GIL while decoding, so threads decode in parallel.
  pool = concurrent.futures.ThreadPoolExecutor(os.cpu_count())
  try:
    for split, (paths, labels) in files.items():
      images = list(pool.map(lambda p: _decode(p, image_size), paths))
      _check_sizes(split, paths, images)
      decoded[split] = images, labels
  finally:  # After a bad file, the images not yet decoded are not waited for.
    pool.shutdown(cancel_futures=True)
  sizes = {s: x[0].shape[:2] for s, (x, _) in decoded.items()}
  if len(set(sizes.values())) > 1:
    raise ValueError(
        f'image folder {path!r}: the splits hold images of different sizes'
        f' ({sizes}); set --config.image_size=N to resize all of them to NxN'
    )
  channels = (
      1 if all(x.ndim == 2 for s in decoded.values() for x in s[0]) else 3
  )
  splits = {
      s: (np.stack([_with_channels(x, channels) for x in xs]), y)
      for s, (xs, y) in decoded.items()
  }
  return splits['train'], splits.get('test'), class_names


def _scan(path, need_test):
  """Lists `{split: (image paths, int32 labels)}` and the class names."""
  if not os.path.isdir(path):
    raise ValueError(
        f'image folder {path!r} does not exist; expected {_LAYOUT}'
    )
  files, classes = {}, {}
  for split in ('train', 'test') if need_test else ('train',):
    split_dir = os.path.join(path, split)
    if not os.path.isdir(split_dir):
      found = _entries(path, os.DirEntry.is_dir)
      raise ValueError(
          f'image folder {path!r} has no {split!r} split (found'
          f' {found or "no folders"}); expected {_LAYOUT}'
      )
    classes[split] = _entries(split_dir, os.DirEntry.is_dir)
    if len(classes[split]) < 2:
      raise ValueError(
          f'image folder split {split_dir!r} holds {len(classes[split])} class'
          f' folder(s) {classes[split]}; a classifier needs at least 2 (hidden'
          f' folders are ignored); expected {_LAYOUT}'
      )
    paths, labels = [], []
    for label, name in enumerate(classes[split]):
      class_dir = os.path.join(split_dir, name)
      images = [
          os.path.join(class_dir, f) for f in _entries(class_dir, _is_image)
      ]
      if not images:
        raise ValueError(
            f'image folder class {class_dir!r} holds no'
            f' {"/".join(_EXTENSIONS)} images; add images or remove the folder'
        )
      paths += images
      labels += [label] * len(images)
    files[split] = paths, np.asarray(labels, np.int32)
  if need_test and classes['train'] != classes['test']:
    only_train = sorted(set(classes['train']) - set(classes['test']))
    only_test = sorted(set(classes['test']) - set(classes['train']))
    raise ValueError(
        f'image folder {path!r}: class folders differ between splits (only in'
        f' train: {only_train}, only in test: {only_test})'
    )
  return files, classes['train']


def _entries(path, keep):
  """The sorted names of the entries of `path` that `keep`, hidden ones not."""
  with os.scandir(path) as entries:
    return sorted(e.name for e in entries if e.name[0] != '.' and keep(e))


def _is_image(entry):
  return entry.is_file() and entry.name.lower().endswith(_EXTENSIONS)


def _decode(path, image_size):
  """One image as uint8: HxW if gray (mode or R = G = B), else HxWx3."""
  try:
    with Image.open(path) as image:
      image.load()
      gray = image.mode in _GRAY_MODES
      if image.mode.startswith('I'):  # 16-bit gray: keep the high byte.
        image = Image.fromarray(
            (np.clip(np.asarray(image), 0, 65535) >> 8).astype(np.uint8)
        )
      image = image.convert('L' if gray else 'RGB')
      if image_size:
        image = image.resize(
            (image_size, image_size), Image.Resampling.BILINEAR
        )
      x = np.asarray(image)
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    reason = ' '.join(str(e).split()) or type(e).__name__
    raise ValueError(
        f'image file {path!r} cannot be decoded ({reason}); replace it, or'
        ' delete it or move it out of the image folder'
    ) from None
  if (
      x.ndim == 3
      and (x[..., 0] == x[..., 1]).all()
      and (x[..., 1] == x[..., 2]).all()
  ):
    x = np.ascontiguousarray(x[..., 0])
  return x


def _check_sizes(split, paths, images):
  """Checks that one split's images share one size, naming two that do not."""
  first = images[0].shape[:2]
  for path, x in zip(paths, images, strict=True):
    if x.shape[:2] != first:
      raise ValueError(
          f'image folder split {split!r} holds images of different sizes:'
          f' {paths[0]} is {"x".join(map(str, first))}, {path} is'
          f' {"x".join(map(str, x.shape[:2]))}; set --config.image_size=N'
          ' to resize all of them to NxN'
      )


def _with_channels(x, channels):
  if channels == 1:
    return x[..., None]
  return x if x.ndim == 3 else np.repeat(x[..., None], 3, axis=-1)
