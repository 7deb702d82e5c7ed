"""The absl entry point shared by `python -m train.mlp` and `train.convnet`.

Bad input exits with one line (`error: ...`, exit code 1). SIGINT or SIGTERM
in the loop saves a checkpoint and exits 0; outside it (start-up, drawing the
curves) one line says what holds and the exit code is 128 + the signal number
(130 for SIGINT, 143 for SIGTERM).
"""

import os
import signal
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from train import config_files, distributed

config_flags.DEFINE_config_file(
    'config',
    None,
    'A config: a bare name (vgg), a file name (vgg.py), configs/vgg.py or any'
    ' path; override keys with --config.<key>=<value>.',
    lock_config=True,
)
flags.DEFINE_string(
    'workdir',
    None,
    'Where metrics, curves and checkpoints go (a checkpoint there is resumed'
    ' from); default: runs/<config name>.',
)
flags.DEFINE_bool(
    'progress', None, 'Show a progress bar; default: when stderr is a tty.'
)
FLAGS = flags.FLAGS
_HELP = ('--help', '-help', '--helpshort', '-h', '-?')


def usage(program: str) -> str:
  """What --help prints: the command, the module's doc and our flags."""
  lines = [
      (
          f'usage: {program} --config=NAME [--workdir=DIR] [--[no]progress]'
          ' [--config.<key>=<value> ...] [--coordinator_address=HOST:PORT'
          ' --num_processes=N --process_id=I]'
      ),
      '',
      (sys.modules['__main__'].__doc__ or '').strip(),
      '',
  ]
  names = ('config', 'workdir', 'progress', 'coordinator_address')
  names += ('num_processes', 'process_id', 'local_device_ids', 'distributed')
  names += ('peer_timeout',)
  for name in names:
    flag = FLAGS[name]
    shown = f'--[no]{name}' if flag.boolean else f'--{name}'
    lines.append(f'  {shown}: {flag.help}')
  lines += ['', f'Known configs: {", ".join(config_files.known())}.']
  lines.append('Try --helpfull for every absl flag.')
  return '\n'.join(lines)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing; help exits 0, a bad flag or config in one line."""
  if any(arg in _HELP for arg in argv[1:]):
    program = os.path.splitext(os.path.basename(argv[0]))[0]
    print(usage(f'python -m train.{program}'))
    raise SystemExit(0)
  return config_files.parse(argv)


_STOPS = (signal.SIGINT, signal.SIGTERM)
_received = []


def _interrupt(signum, frame):
  del frame  # Unused.
  _received.append(signum)
  raise KeyboardInterrupt


def _train(family: str, workdir: str) -> None:
  """Checks the model's family, then trains; imports jax only now."""
  from train import loop, registry  # --help and config errors answer at once.

  registry.check_family(FLAGS.config.model.name, family)
  distributed.initialize()  # Before anything touches a device.
  try:
    loop.train_and_evaluate(FLAGS.config, workdir, progress=FLAGS.progress)
  except BaseException as e:
    distributed.failed(e)
    raise
  distributed.finish()


def main(argv, family: str) -> None:
  """Trains FLAGS.config in FLAGS.workdir; bad input exits with one line."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS['verbosity'].present:
    # Orbax logs each checkpoint step at INFO; keep the console to our lines.
    logging.set_verbosity(logging.WARNING)
  if FLAGS.config is None:
    raise app.UsageError('--config=<name> is required, e.g. --config=vgg.')
  workdir = FLAGS.workdir
  if workdir is None:
    name = os.path.basename(config_flags.get_config_filename(FLAGS['config']))
    workdir = os.path.join('runs', os.path.splitext(name)[0])
  # SIGTERM interrupts start-up and plotting as SIGINT does; the loop itself
  # turns both into a checkpoint and a clean stop.
  previous = {signum: signal.signal(signum, _interrupt) for signum in _STOPS}
  _received.clear()
  try:
    _train(family, workdir)
  except (ValueError, FloatingPointError) as e:
    distributed.exit_now(1, f'error: {e}')
    raise SystemExit(f'error: {e}') from None
  except KeyboardInterrupt as e:
    signum = _received[0] if _received else signal.SIGINT
    message = str(e) or (
        'interrupted during start-up, before the first step: nothing was'
        ' trained; rerun the command to start.'
    )
    message = f'{signal.Signals(signum).name}: {message}'
    distributed.exit_now(128 + signum, message)
    print(message, file=sys.stderr)
    raise SystemExit(128 + signum) from None
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)
