"""The absl entry point shared by `python -m train.mlp` and `train.convnet`."""

import os

from absl import app, flags, logging
from ml_collections import config_flags

from train import loop

config_flags.DEFINE_config_file(
    'config',
    None,
    'A configs/*.py file; override keys with --config.<key>=<value>.',
    lock_config=True,
)
flags.DEFINE_string(
    'workdir',
    None,
    'Where metrics, curves and checkpoints go (a checkpoint there is resumed'
    ' from); default: runs/<config file name>.',
)
flags.DEFINE_bool(
    'progress', None, 'Show a progress bar; default: when stderr is a tty.'
)
FLAGS = flags.FLAGS


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a bad flag or config key reported in one line."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    raise SystemExit(f'error: {e}') from None
  except AttributeError as e:
    # ml_collections' locked config: a key that does not exist, with a hint.
    message = str(e).strip('\'"').replace('\\n', ' ').replace("\\'", '')
    raise SystemExit(f'error: unknown config key {message}') from None


def main(argv, model_names: tuple[str, ...]) -> None:
  """Trains FLAGS.config in FLAGS.workdir; bad input exits with one line."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS['verbosity'].present:
    # Orbax logs each checkpoint step at INFO; keep the console to our lines.
    logging.set_verbosity(logging.WARNING)
  if FLAGS.config is None:
    raise app.UsageError('--config=configs/<name>.py is required.')
  workdir = FLAGS.workdir
  if workdir is None:
    name = os.path.splitext(
        os.path.basename(config_flags.get_config_filename(FLAGS['config']))
    )[0]
    workdir = os.path.join('runs', name)
  try:
    loop.train_and_evaluate(
        FLAGS.config, workdir, model_names=model_names, progress=FLAGS.progress
    )
  except (ValueError, FloatingPointError) as e:
    raise SystemExit(f'error: {e}') from None
