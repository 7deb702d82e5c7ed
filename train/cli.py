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

import configs
from train import distributed

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
CONFIGS_DIR = os.path.dirname(os.path.abspath(configs.__file__))
_HELP = ('--help', '-help', '--helpshort', '-h', '-?')


def known_configs() -> list[str]:
  return sorted(
      name[:-3]
      for name in os.listdir(CONFIGS_DIR)
      if name.endswith('.py') and not name.startswith(('_', 'default'))
  )


def resolve_config(value: str) -> str:
  """The file a `--config` value names; SystemExit in one line if none.

  Tried in turn: the value as a path; then, in the installed `configs`
  package, the value with a leading `configs/` dropped, as is and with `.py`
  added, so `vgg`, `vgg.py` and `configs/vgg.py` work from any directory.
  A `:argument` suffix (config_flags' syntax) is kept.
  """
  path, colon, argument = value.partition(':')
  name = path.removeprefix('configs' + os.sep)
  candidates = (path, os.path.join(CONFIGS_DIR, name))
  candidates += (candidates[-1] + '.py',)
  found = next((c for c in candidates if os.path.isfile(c)), None)
  if found is None:
    raise SystemExit(
        f'error: --config={value}: no such config file, here or in'
        f' {CONFIGS_DIR}; known configs: {", ".join(known_configs())}.'
    )
  try:
    with open(found, encoding='utf-8') as f:
      compile(f.read(), found, 'exec')
  except SyntaxError as e:
    raise SystemExit(
        f'error: --config={value}: {found} line {e.lineno}: {e.msg}.'
    ) from None
  return found + colon + argument


def _with_resolved_config(argv: list[str]) -> list[str]:
  argv = list(argv)
  for i, arg in enumerate(argv):
    for prefix in ('--config=', '-config='):
      if arg.startswith(prefix):
        argv[i] = prefix + resolve_config(arg[len(prefix) :])
    if arg in ('--config', '-config') and i + 1 < len(argv):
      argv[i + 1] = resolve_config(argv[i + 1])
  return argv


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
  lines += ['', f'Known configs: {", ".join(known_configs())}.']
  lines.append('Try --helpfull for every absl flag.')
  return '\n'.join(lines)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing; help exits 0, a bad flag or config in one line."""
  if any(arg in _HELP for arg in argv[1:]):
    program = os.path.splitext(os.path.basename(argv[0]))[0]
    print(usage(f'python -m train.{program}'))
    raise SystemExit(0)
  argv = _with_resolved_config(argv)
  try:
    return FLAGS(argv)
  except flags.Error as e:
    raise SystemExit(f'error: {str(e).splitlines()[0]}') from None
  except AttributeError as e:
    # ml_collections' locked config: a key that does not exist, with a hint.
    message = str(e).strip('\'"').replace('\\n', ' ').replace("\\'", '')
    raise SystemExit(f'error: unknown config key {message}') from None
  except Exception as e:  # The config file's own code failed.
    raise SystemExit(
        f'error: loading the config failed: {type(e).__name__}: {e}'
    ) from None


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
