"""Shared fixtures of the train/ tests: tiny image folders and data configs."""

import os
import pathlib
import sys
import tempfile

import jax
import ml_collections
import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]  # The repository.
QUICKSTART_MLP = ROOT / 'configs' / 'quickstart_mlp.py'
TIMING = ('images_per_sec', 'wall_time')  # Row fields that differ run to run.

# Runs that compile the same program (a resume, a rerun, a subprocess) take it
# from JAX's persistent compilation cache instead of compiling it again.
jax.config.update(
    'jax_compilation_cache_dir',
    os.path.join(tempfile.gettempdir(), 'jaxbp-tests-jax-cache'),
)
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.2)


def subprocess_env(**extra) -> dict:
  """The environment of a CLI subprocess: this checkout, the shared cache.

  XLA_FLAGS is dropped (import jaxbp in the child sets its own defaults).
  """
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  return {
      **env,
      'PYTHONPATH': str(ROOT),
      'JAX_COMPILATION_CACHE_DIR': jax.config.jax_compilation_cache_dir,
      'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0.2',
      **extra,
  }


def mlp_command(workdir, max_steps, *flags) -> list[str]:
  """`python -m train.mlp` of a tiny quick-start run (16 units), then `flags`.

  The rate is constant, so a resumed run keeps the same rates.
  """
  return [
      sys.executable,
      '-m',
      'train.mlp',
      f'--config={QUICKSTART_MLP}',
      f'--workdir={workdir}',
      f'--config.max_steps={max_steps}',
      '--config.schedule=constant',
      '--config.model.hidden_units=(16,)',
      '--noprogress',
      *flags,
  ]


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
