"""Shared fixtures of the train/ tests: tiny image folders and data configs."""

import os
import pathlib
import tempfile

import jax
import ml_collections
import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]  # The repository.

# Runs that compile the same program (a resume, a rerun, a subprocess) take it
# from JAX's persistent compilation cache instead of compiling it again.
jax.config.update(
    'jax_compilation_cache_dir',
    os.path.join(tempfile.gettempdir(), 'jaxbp-tests-jax-cache'),
)
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.2)


def data_config(**overrides) -> ml_collections.ConfigDict:
  """The config keys train/input_pipeline.py reads, with test defaults."""
  config = ml_collections.ConfigDict({
      'dataset': 'digits',
      'data_dir': None,
      'normalization': 'per_channel',
      'random_crop_padding': 0,
      'random_flip': False,
      'validation_size': 0,
      'image_size': None,
      'seed': 0,
  })
  config.update(overrides)
  return config


def class_pixels(label: int, shape, rng) -> np.ndarray:
  """uint8 pixels whose range tells the class: [60 label, 60 label + 50)."""
  return (rng.integers(0, 50, shape) + 60 * label).astype(np.uint8)


def write_image_folder(
    root: pathlib.Path,
    classes=('ant', 'bee', 'cow'),
    counts=(('train', 4), ('test', 2)),
    size=(6, 5),
    mode='RGB',
    ext='png',
    seed=0,
) -> pathlib.Path:
  """Writes root/split/class/i.ext images; class k's pixels in [60k, 60k+50).

  `size` is (height, width); `mode` is a PIL mode ('RGB', 'L', 'LA', 'RGBA'),
  or a callable `(split, label, i) -> mode` to mix modes in one folder.
  """
  rng = np.random.default_rng(seed)
  channels = {'L': (), 'LA': (2,), 'RGB': (3,), 'RGBA': (4,)}
  for split, count in counts:
    for label, name in enumerate(classes):
      folder = root / split / name
      folder.mkdir(parents=True, exist_ok=True)
      for i in range(count):
        m = mode(split, label, i) if callable(mode) else mode
        pixels = class_pixels(label, (*size, *channels[m]), rng)
        if m in ('LA', 'RGBA'):
          pixels[..., -1] = 255  # Opaque: alpha is dropped on decoding.
        Image.fromarray(pixels, m).save(folder / f'{i}.{ext}')
  return root


@pytest.fixture
def image_folder(tmp_path):
  """Returns `write_image_folder` writing under a fresh tmp directory."""
  return lambda **kwargs: write_image_folder(tmp_path / 'data', **kwargs)
