"""Fault injection on the real CLI: damaged checkpoints, bad workdirs, bad files.

Each case runs `python -m train.mlp` in a subprocess and asserts its exit
code, that no traceback is printed, what its one line names, and that nothing
saved was lost (a resumed run ends bit-identical to an uninterrupted one).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.train import conftest
from train import workdir as workdir_lib

ROOT, TIMING = conftest.ROOT, conftest.TIMING


def cli_command(workdir, max_steps, *overrides) -> list[str]:
  """The command of a tiny quick-start run: 16 units, a checkpoint every 2."""
  return conftest.mlp_command(
      workdir,
      max_steps,
      '--config.eval_every=2',
      '--config.checkpoint_every=2',
      '--config.keep_checkpoints=100',
      '--config.model.dropout=0.1',
      *overrides,
  )


def run(workdir, max_steps=6, *overrides, wrap=()):
  """Runs `cli_command` (after `wrap`, e.g. unshare) from the checkout root."""
  env = conftest.subprocess_env(TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run(
      [*wrap, *cli_command(workdir, max_steps, *overrides)],
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=600,
  )


def assert_one_line_error(result, *names) -> str:
  """Exit 1, no traceback, one 'error: ' line naming `names`, printed last.

  (TensorFlow, imported by tfds for image folders, may log before it.)
  """
  assert result.returncode == 1, result.stderr
  assert 'Traceback' not in result.stderr
  lines = result.stderr.strip().splitlines()
  [line] = [x for x in lines if x.startswith('error: ')]
  assert line == lines[-1]
  for name in names:
    assert str(name) in line
  return line


def rows(workdir) -> list[dict]:
  text = (pathlib.Path(workdir) / 'metrics.jsonl').read_text()
  return [
      {k: v for k, v in json.loads(line).items() if k not in TIMING}
      for line in text.splitlines()
  ]


def final_digest(workdir, step=6) -> str:
  """The digest saved with checkpoint `step`: equal digests, equal arrays."""
  meta = pathlib.Path(workdir) / 'checkpoints' / str(step) / 'meta' / 'metadata'
  return json.loads(meta.read_text())['digest']


@pytest.fixture(scope='module')
def whole(tmp_path_factory):
  """An uninterrupted 6-step run: what every resumed run must end as."""
  workdir = tmp_path_factory.mktemp('whole') / 'run'
  result = run(workdir)
  assert result.returncode == 0 and not result.stderr, result.stderr
  return workdir


@pytest.fixture(scope='module')
def base(tmp_path_factory):
  """A run stopped at step 4 (checkpoints 2 and 4); tests damage copies."""
  workdir = tmp_path_factory.mktemp('base') / 'run'
  assert run(workdir, 4).returncode == 0
  return workdir


@pytest.fixture
def copy(base, tmp_path):
  return pathlib.Path(shutil.copytree(base, tmp_path / 'run'))


def data_files(step_dir):
  files = [p for p in step_dir.glob('state/**/d/*') if p.is_file()]
  assert files
  return sorted(files, key=lambda p: p.stat().st_size)


def flip_one_bit(step_dir):
  path = data_files(step_dir)[-1]
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0x10
  path.write_bytes(bytes(data))


def truncate(step_dir):
  path = data_files(step_dir)[-1]
  os.truncate(path, path.stat().st_size // 2)


def overwrite(step_dir):
  path = data_files(step_dir)[-1]
  path.write_bytes(b'\0' * path.stat().st_size)


def delete_data(step_dir):
  for path in data_files(step_dir):
    path.unlink()


def break_metadata_json(step_dir):
  (step_dir / 'meta' / 'metadata').write_text('{"signature": {"model"')


@pytest.mark.parametrize(
    'damage',
    [flip_one_bit, truncate, overwrite, delete_data, break_metadata_json],
)
def test_damaged_newest_checkpoint_falls_back_and_resumes_exactly(
    whole, copy, damage
):
  damage(copy / 'checkpoints' / '4')
  result = run(copy)
  assert result.returncode == 0 and 'Traceback' not in result.stderr
  [line] = result.stderr.strip().splitlines()
  assert line.startswith('checkpoint step 4 is damaged')
  assert 'resuming from step 2' in line
  [moved] = (copy / 'checkpoints_damaged').iterdir()
  assert moved.name.startswith('4-') and str(moved) in line
  assert (moved / 'state').is_dir()  # Moved aside, not deleted.
  assert final_digest(copy) == final_digest(whole)
  assert rows(copy) == rows(whole)


def test_no_intact_checkpoint_is_one_line_and_moves_nothing(copy):
  flip_one_bit(copy / 'checkpoints' / '4')
  break_metadata_json(copy / 'checkpoints' / '2')
  before = (copy / 'metrics.jsonl').read_text()
  line = assert_one_line_error(
      run(copy),
      'no intact checkpoint',
      copy / 'checkpoints',
      'step 4',
      'step 2',
  )
  assert 'nothing was moved or deleted' in line
  assert sorted(os.listdir(copy / 'checkpoints')) == ['2', '4']
  assert not (copy / 'checkpoints_damaged').exists()
  assert (copy / 'metrics.jsonl').read_text() == before


def test_other_data_set_of_same_shape_is_refused_and_config_kept(
    copy, tmp_path
):
  # Ten classes of 8x8 gray images: digits' shape and class count.
  folder = conftest.write_image_folder(
      tmp_path / 'digits_like',
      classes=tuple(f'c{k}' for k in range(10)),
      counts=(('train', 2), ('test', 1)),
      size=(8, 8),
      mode='L',
  )
  before = {
      name: (copy / name).read_text()
      for name in ('config.json', 'metrics.jsonl')
  }
  assert_one_line_error(
      run(copy, 6, f'--config.dataset=image_folder:{folder}'),
      'different data set',
      'differs in: data',
      copy / 'checkpoints',
  )
  for name, text in before.items():
    assert (copy / name).read_text() == text


def test_broken_metrics_line_names_file_and_line(copy):
  path = copy / 'metrics.jsonl'
  lines = path.read_text().splitlines(keepends=True)
  path.write_text('{"step": 2, "train_lo\n' + ''.join(lines[1:]))
  assert_one_line_error(run(copy), path, 'line 1', 'fix or delete that line')
  assert path.read_text().startswith('{"step": 2, "train_lo\n')


def test_workdir_that_is_a_file_is_one_line(tmp_path):
  path = tmp_path / 'run'
  path.write_text('not a folder')
  assert_one_line_error(run(path), path, 'is a file')
  assert path.read_text() == 'not a folder'


def test_second_run_in_a_locked_workdir_names_the_first(tmp_path):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  with workdir_lib.lock(workdir):  # This test process is the "first run".
    line = assert_one_line_error(run(workdir), workdir, 'in use')
  assert f'(process {os.getpid()})' in line
  assert not (workdir / 'metrics.jsonl').exists()


def in_mount_namespace(script: str, *args) -> tuple[str, ...]:
  """A `wrap` running `script` (sh; $1.. = args) before the CLI ("$@")."""
  if shutil.which('unshare') is None:
    pytest.skip('needs unshare(1)')
  probe = subprocess.run(
      ['unshare', '-m', 'mount', '-t', 'tmpfs', 'tmpfs', '/mnt'],
      capture_output=True,
  )
  if probe.returncode:
    pytest.skip('needs the right to mount in a mount namespace (root)')
  return ('unshare', '-m', 'sh', '-c', script, 'sh', *args)


def test_read_only_workdir_is_one_line(tmp_path):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  wrap = in_mount_namespace(
      'd=$1; shift; mount --bind "$d" "$d" && mount -o remount,bind,ro "$d"'
      ' && exec "$@"',
      workdir,
  )
  assert_one_line_error(run(workdir, wrap=wrap), workdir, 'read-only')


def test_immutable_workdir_is_one_line(tmp_path):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  if subprocess.run(['chattr', '+i', workdir], capture_output=True).returncode:
    pytest.skip('needs chattr +i (root, a file system with attributes)')
  try:
    assert_one_line_error(run(workdir), workdir, 'immutable')
  finally:
    subprocess.run(['chattr', '-i', workdir], check=True)


def test_full_disk_is_one_line_and_the_run_resumes(tmp_path):
  # A 320 KiB tmpfs takes about two checkpoints; the run is copied out of it.
  mount, saved = tmp_path / 'disk', tmp_path / 'saved'
  mount.mkdir()
  wrap = in_mount_namespace(
      'm=$1; s=$2; shift 2; mount -t tmpfs -o size=320k tmpfs "$m" || exit 9;'
      ' "$@"; rc=$?; cp -a "$m/run" "$s"; exit $rc',
      mount,
      saved,
  )
  result = run(mount / 'run', 1000, wrap=wrap)
  assert_one_line_error(result, 'no space left', mount / 'run')
  steps = sorted(
      int(s) for s in os.listdir(saved / 'checkpoints') if s.isdigit()
  )
  assert steps and all(s % 2 == 0 for s in steps)
  kept = [r for r in rows(saved) if r['step'] <= steps[-1]]
  assert [r['step'] for r in kept] == list(range(2, steps[-1] + 1, 2))
  # Resumed off the full disk: every saved checkpoint and row is intact.
  resumed = run(saved, steps[-1] + 2)
  assert resumed.returncode == 0 and not resumed.stderr, resumed.stderr
  assert rows(saved)[: len(kept)] == kept
  assert rows(saved)[-1]['step'] == steps[-1] + 2


HOLD_LOCK = """
import sys, time
from train import workdir
with workdir.lock(sys.argv[1]):
  print(flush=True)
  time.sleep(60)
"""


def test_lock_dies_with_a_killed_holder(tmp_path):
  with subprocess.Popen(
      [sys.executable, '-c', HOLD_LOCK, str(tmp_path)],
      cwd=ROOT,
      env={**os.environ, 'PYTHONPATH': str(ROOT)},
      stdout=subprocess.PIPE,
  ) as holder:
    holder.stdout.readline()  # The lock is held.
    with pytest.raises(workdir_lib.WorkdirError, match=f'process {holder.pid}'):
      with workdir_lib.lock(tmp_path):
        pass
    holder.kill()  # SIGKILL: no cleanup code runs.
    holder.wait()
  with workdir_lib.lock(tmp_path):
    pass
