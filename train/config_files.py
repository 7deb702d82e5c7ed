"""`--config` values -> config files, and absl flag parsing in one line.

Shared by `train.mlp`/`train.convnet` (configs/) and `train.study`
(configs/studies/): a bare name, a file name, `configs/...` or any path
resolves from any directory, through the installed `configs` package.
"""

import os

from absl import flags

import configs

CONFIGS_DIR = os.path.dirname(os.path.abspath(configs.__file__))


def known(folder: str = CONFIGS_DIR) -> list[str]:
  """The config names in `folder` (its `.py` files but helpers/defaults)."""
  return sorted(
      name[:-3]
      for name in os.listdir(folder)
      if name.endswith('.py') and not name.startswith(('_', 'default'))
  )


def resolve(value: str, folder=CONFIGS_DIR, kind=('config file', 'configs')):
  """The file a `--config` value names; SystemExit in one line if none.

  Tried in turn: the value as a path; then, in `folder` and in the installed
  `configs` package, the value with a leading `configs/` dropped, as is and
  with `.py` added, so `vgg`, `vgg.py` and `configs/vgg.py` work from any
  directory. A `:argument` suffix (config_flags' syntax) is kept. A file
  that does not compile is one line naming it and the line. `kind` names
  one config and the list of known ones in the message.
  """
  path, colon, argument = value.partition(':')
  name = path.removeprefix('configs' + os.sep)
  candidates = [path]
  for base in dict.fromkeys((folder, CONFIGS_DIR)):
    candidates += [os.path.join(base, name), os.path.join(base, name + '.py')]
  found = next((c for c in candidates if os.path.isfile(c)), None)
  if found is None:
    raise SystemExit(
        f'error: --config={value}: no such {kind[0]}, here or in {folder};'
        f' known {kind[1]}: {", ".join(known(folder))}.'
    )
  try:
    with open(found, encoding='utf-8') as f:
      compile(f.read(), found, 'exec')
  except SyntaxError as e:
    raise SystemExit(
        f'error: --config={value}: {found} line {e.lineno}: {e.msg}.'
    ) from None
  return found + colon + argument


def parse(argv: list[str], folder=CONFIGS_DIR, kind=('config file', 'configs')):
  """absl's parsing of `argv`, `--config` resolved; errors in one line."""
  argv = list(argv)
  for i, arg in enumerate(argv):
    for prefix in ('--config=', '-config='):
      if arg.startswith(prefix):
        argv[i] = prefix + resolve(arg[len(prefix) :], folder, kind)
    if arg in ('--config', '-config') and i + 1 < len(argv):
      argv[i + 1] = resolve(argv[i + 1], folder, kind)
  try:
    return flags.FLAGS(argv)
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
