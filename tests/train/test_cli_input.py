"""The CLIs' answers to bad input, --help and signals outside the loop."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from absl import flags
from absl.testing import flagsaver

from tests.train.conftest import subprocess_env
from tests.train.test_cli import FAST, rows, run_cli
from train import cli, config_files, convnet, mlp

# ml_collections loads config files with importlib's deprecated load_module().
pytestmark = pytest.mark.filterwarnings(
    'ignore:the load_module\\(\\) method is deprecated:DeprecationWarning'
)


def test_misspelt_key_is_an_error(tmp_path, monkeypatch):
  with pytest.raises(SystemExit) as exit_info:
    run_cli(
        mlp,
        monkeypatch,
        '--config=configs/quickstart_mlp.py',
        f'--workdir={tmp_path}',
        '--config.max_stepz=3',
    )
  text = str(exit_info.value.code)
  assert text.startswith('error: unknown config key max_stepz')
  assert 'max_steps' in text and '\n' not in text


@pytest.mark.parametrize(
    ('module', 'args', 'message'),
    [
        (mlp, ['--config.optimizer=adagrad'], 'config.optimizer'),
        (mlp, ['--config.batch_size=-1'], 'config.batch_size'),
        (mlp, ['--config.dataset=image_folder:/no/such'], 'does not exist'),
        (convnet, [], 'config.model.name'),
    ],
)
def test_bad_input_exits_with_one_line(
    tmp_path, monkeypatch, module, args, message
):
  with pytest.raises(SystemExit) as exit_info:
    run_cli(
        module,
        monkeypatch,
        '--config=configs/quickstart_mlp.py',
        f'--workdir={tmp_path / "run"}',
        *args,
    )
  text = str(exit_info.value.code)
  assert text.startswith('error: ') and message in text and '\n' not in text
  assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('value', ['vgg', 'vgg.py', 'configs/vgg.py'])
def test_config_name_resolves_from_any_directory(tmp_path, monkeypatch, value):
  monkeypatch.chdir(tmp_path)
  expected = os.path.join(config_files.CONFIGS_DIR, 'vgg.py')
  assert config_files.resolve(value) == expected
  assert config_files.resolve(f'{value}:arg').endswith('vgg.py:arg')


def test_a_path_that_exists_wins_over_a_config_name(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  (tmp_path / 'vgg.py').write_text('def get_config():\n  return None\n')
  assert config_files.resolve('vgg.py') == 'vgg.py'


def test_cli_trains_from_another_directory_by_config_name(
    tmp_path, monkeypatch
):
  argv = [
      'train.mlp',
      '--config=quickstart_mlp',
      f'--workdir={tmp_path / "run"}',
      '--config.max_steps=2',
      '--config.eval_every=2',
      *FAST,
  ]
  monkeypatch.setattr(sys, 'argv', argv)
  monkeypatch.chdir(tmp_path)
  with flagsaver.flagsaver():
    try:
      mlp.main(cli.parse_flags(argv))
    finally:
      flags.FLAGS.unparse_flags()
  assert [r['step'] for r in rows(tmp_path / 'run')] == [2]


def run_here(tmp_path, *args, **kwargs):
  """Runs a command in tmp_path, outside the checkout; returns the result."""
  return subprocess.run(
      [sys.executable, *args],
      cwd=tmp_path,
      env=subprocess_env(),
      capture_output=True,
      text=True,
      timeout=120,
      **kwargs,
  )


@pytest.mark.parametrize('module', ['train.mlp', 'train.convnet'])
def test_help_shows_the_flags_and_exits_zero(tmp_path, module):
  result = run_here(tmp_path, '-m', module, '--help')
  assert result.returncode == 0, result.stderr
  assert f'usage: python -m {module} --config=' in result.stdout
  for flag in ('--config', '--workdir', '--[no]progress'):
    assert f'  {flag}: ' in result.stdout
  assert 'quickstart' in result.stdout  # the known configs are listed


@pytest.mark.parametrize(
    ('config', 'message'),
    [
        ('no/such/config.py', 'no such config file'),
        ('nosuchname', 'known configs: '),
        ('broken.py', 'broken.py line 2: '),
        ('raises.py', 'NameError: name'),
    ],
)
def test_config_problem_is_one_line_without_traceback(
    tmp_path, config, message
):
  (tmp_path / 'broken.py').write_text('def get_config():\n  return (\n')
  (tmp_path / 'raises.py').write_text('def get_config():\n  return nope\n')
  result = run_here(
      tmp_path, '-m', 'train.mlp', f'--config={config}', '--workdir=run'
  )
  assert result.returncode == 1
  assert result.stderr.startswith(
      'error: --config='
  ) or result.stderr.startswith('error: loading the config failed')
  assert message in result.stderr and result.stderr.count('\n') == 1
  assert 'Traceback' not in result.stderr
  assert not (tmp_path / 'run').exists()


# Runs train.mlp with start-up (`steps.start_state`, after the checkpoints are
# opened) or `reporting.plot_curves` stalled after printing STALLED, so a
# signal lands in start-up or in plotting for certain.
STALLED = textwrap.dedent("""
    import sys, time
    from absl import app
    from train import cli, mlp, reporting, steps
    where = sys.argv.pop(1)
    module = steps if where == 'setup' else reporting
    name = 'start_state' if where == 'setup' else 'plot_curves'
    original = getattr(module, name)
    def stalled(*args, **kwargs):
      print('STALLED', flush=True)
      time.sleep(120)
      return original(*args, **kwargs)
    setattr(module, name, stalled)
    app.run(mlp.main, flags_parser=cli.parse_flags)
""")


@pytest.mark.parametrize(
    ('where', 'signum', 'message'),
    [
        ('setup', signal.SIGINT, 'SIGINT: interrupted during start-up'),
        ('setup', signal.SIGTERM, 'SIGTERM: interrupted during start-up'),
        ('plot', signal.SIGINT, 'SIGINT: interrupted while drawing the curves'),
    ],
)
def test_signal_outside_the_loop_exits_with_one_line(
    tmp_path, where, signum, message
):
  process = subprocess.Popen(
      [
          sys.executable,
          '-c',
          STALLED,
          where,
          '--config=quickstart_mlp',
          f'--workdir={tmp_path / "run"}',
          '--config.max_steps=2',
          '--config.eval_every=2',
          '--noprogress',
      ],
      cwd=tmp_path,
      env=subprocess_env(),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
  )
  for line in process.stdout:
    if line == 'STALLED\n':
      break
  process.send_signal(signum)
  _, err = process.communicate(timeout=60)
  assert process.returncode == 128 + signum
  assert err.startswith(message) and err.count('\n') == 1, err
  assert 'Traceback' not in err
  saved = tmp_path / 'run' / 'checkpoints'
  if where == 'setup':
    assert os.listdir(saved) == []
  else:
    assert os.listdir(saved) == ['2'] and rows(tmp_path / 'run')
