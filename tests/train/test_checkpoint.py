"""Units of checkpoint.py, workdir.py and metrics.py, without a training run."""

import errno
import json
import os

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from train import checkpoint, metrics
from train import workdir as workdir_lib


def tree(scale=1):
  return {'w': jnp.arange(64.0) * scale, 'n': {'steps': jnp.int32(3 * scale)}}


def config(**overrides):
  config = ml_collections.ConfigDict({
      'model': {'name': 'mlp', 'hidden_units': (16,), 'vjp': 'manual'},
      'optimizer': 'adam',
      'normalization': 'per_channel',
      'batch_order': 'shuffle',
      'loss_reduction': 'mean',
  })
  config.update(overrides)
  return config


DIGITS = {'name': 'digits', 'sizes': [1437, 360], 'class_names': list('ab')}


def saved(workdir, steps=(1, 2), signature=None):
  """A Checkpointer holding `tree(step)` at each step."""
  ckpt = checkpoint.Checkpointer(workdir, keep=5)
  for step in steps:
    ckpt.save(step, tree(step), {'signature': signature or {}, 'step': step})
  return ckpt


def meta_path(workdir, step):
  return workdir / 'checkpoints' / str(step) / 'meta' / 'metadata'


def test_digest_sees_one_bit_dtype_shape_and_not_key_order():
  base = checkpoint.digest(tree())
  assert checkpoint.digest({'n': tree()['n'], 'w': tree()['w']}) == base
  bits = np.asarray(tree()['w']).view(np.uint32).copy()
  bits[5] ^= 1
  flipped = {**tree(), 'w': jnp.asarray(bits.view(np.float32))}
  assert checkpoint.digest(flipped) != base
  assert checkpoint.digest({**tree(), 'w': tree()['w'].reshape(8, 8)}) != base
  as_f16 = {**tree(), 'w': tree()['w'].astype(jnp.float16)}
  assert checkpoint.digest(as_f16) != base


def test_signature_holds_data_identity_and_normalization():
  sig = checkpoint.signature(config(), data_identity=DIGITS)
  assert sig['data'] == DIGITS and sig['normalization'] == 'per_channel'
  assert 'vjp' not in sig['model'] and sig['model']['hidden_units'] == [16]
  assert 'data' not in checkpoint.signature(config())


def test_other_data_set_normalization_or_protocol_is_refused(tmp_path):
  sig = checkpoint.signature(config(), data_identity=DIGITS)
  ckpt = saved(tmp_path, signature=sig)
  other = {**DIGITS, 'name': 'image_folder:/elsewhere'}
  with pytest.raises(
      ValueError, match=r'different data set \(differs in: data'
  ):
    ckpt.check_signature(checkpoint.signature(config(), data_identity=other))
  with pytest.raises(ValueError, match=r'differs in: normalization'):
    ckpt.check_signature(checkpoint.signature(config(normalization='unit')))
  for key, value in (('batch_order', 'in_order'), ('loss_reduction', 'sum')):
    with pytest.raises(ValueError, match=rf'differs in: {key}'):
      ckpt.check_signature(checkpoint.signature(config(**{key: value})))
  ckpt.check_signature(sig)  # The same run resumes.


def test_wrong_digest_falls_back_and_moves_the_checkpoint_aside(
    tmp_path, capsys
):
  ckpt = saved(tmp_path)
  meta = json.loads(meta_path(tmp_path, 2).read_text())
  meta['digest'] = checkpoint.digest(tree(1))
  meta_path(tmp_path, 2).write_text(json.dumps(meta))

  step, restored = ckpt.restore(tree())
  assert step == 1 and checkpoint.digest(restored) == checkpoint.digest(tree())
  [line] = capsys.readouterr().err.splitlines()
  [moved] = (tmp_path / 'checkpoints_damaged').iterdir()
  assert line.startswith('checkpoint step 2 is damaged (its arrays do not')
  assert str(moved) in line and moved.name.startswith('2-')
  assert (moved / 'state').is_dir() and not (
      tmp_path / 'checkpoints/2'
  ).exists()
  assert ckpt.latest_step() == 1
  ckpt.save(2, tree(2), {'signature': {}, 'step': 2})  # Recomputed, saved anew.
  assert ckpt.restore(tree())[0] == 2
  ckpt.close()


def test_unreadable_arrays_fall_back_quietly(tmp_path, capsys):
  ckpt = saved(tmp_path)
  for path in (tmp_path / 'checkpoints' / '2').glob('state/**/d/*'):
    path.unlink()
  assert ckpt.restore(tree())[0] == 1
  [line] = capsys.readouterr().err.splitlines()
  assert 'step 2 is damaged (its arrays are unreadable' in line
  ckpt.close()


def test_no_intact_checkpoint_is_one_line_and_moves_nothing(tmp_path):
  ckpt = saved(tmp_path)
  meta_path(tmp_path, 1).write_text('{')
  meta = json.loads(meta_path(tmp_path, 2).read_text())
  del meta['digest']  # As written before checkpoints carried one.
  meta_path(tmp_path, 2).write_text(json.dumps(meta))
  with pytest.raises(ValueError) as error:
    ckpt.restore(tree())
  message = str(error.value)
  assert '\n' not in message and str(tmp_path / 'checkpoints') in message
  assert 'step 2: its metadata holds no digest' in message
  assert 'step 1: its metadata is unreadable (JSONDecodeError' in message
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['1', '2']
  with pytest.raises(ValueError, match='no intact checkpoint'):
    ckpt.check_signature({})
  ckpt.close()


def test_signature_is_read_from_the_checkpoint_to_restore(tmp_path):
  ckpt = saved(tmp_path, steps=(1,), signature={'model': 'old'})
  ckpt.save(2, tree(2), {'signature': {'model': 'new'}, 'step': 2})
  meta_path(tmp_path, 2).write_text('not json')
  with pytest.raises(ValueError, match=r'\(step 1\) of a different model'):
    ckpt.check_signature({'model': 'new'})
  with pytest.raises(ValueError, match=r'\(step 1\) of a different model'):
    ckpt.restore(tree(), {'model': 'new'})
  ckpt.close()


def test_full_disk_on_save_is_enospc_naming_the_step(tmp_path, monkeypatch):
  ckpt = saved(tmp_path, steps=(1,))

  def full(*args, **kwargs):
    raise ValueError('RESOURCE_EXHAUSTED: Error writing local file ...')

  monkeypatch.setattr(ckpt.manager, 'save', full)
  with pytest.raises(OSError) as error:
    ckpt.save(2, tree(2), {'step': 2})
  assert error.value.errno == errno.ENOSPC
  assert error.value.filename == str(tmp_path / 'checkpoints' / '2')
  with pytest.raises(workdir_lib.WorkdirError, match='no space left'):
    with workdir_lib.write_errors(tmp_path):
      ckpt.save(2, tree(2), {'step': 2})


def test_atomic_write_keeps_the_old_file_until_the_new_one_is_whole(
    tmp_path, monkeypatch
):
  path = tmp_path / 'config.json'
  workdir_lib.atomic_write(path, 'old\n')

  def killed(*args):
    raise KeyboardInterrupt  # A kill between writing and renaming.

  monkeypatch.setattr(os, 'replace', killed)
  with pytest.raises(KeyboardInterrupt):
    workdir_lib.atomic_write(path, 'new\n')
  assert path.read_text() == 'old\n' and os.listdir(tmp_path) == [path.name]
  monkeypatch.undo()
  workdir_lib.atomic_write(path, 'new\n')
  assert path.read_text() == 'new\n'


def test_prepare_creates_the_workdir_and_refuses_a_file(tmp_path):
  assert workdir_lib.prepare(tmp_path / 'a' / 'b') == str(tmp_path / 'a' / 'b')
  assert os.listdir(tmp_path / 'a' / 'b') == []  # The probe is gone.
  (tmp_path / 'file').write_text('x')
  with pytest.raises(workdir_lib.WorkdirError, match='is a file, not a folder'):
    workdir_lib.prepare(tmp_path / 'file')


@pytest.mark.parametrize(
    ('code', 'message'),
    [
        (errno.ENOSPC, 'no space left on the device of workdir'),
        (errno.EROFS, 'is on a read-only file system'),
        (errno.EACCES, 'cannot write in workdir'),
        (errno.EPERM, 'read-only or immutable'),
    ],
)
def test_prepare_probe_failure_is_one_line(
    tmp_path, monkeypatch, code, message
):
  # As root, permission bits do not stop writes: the probe's write fails.
  def refused(fd, data):
    raise OSError(code, os.strerror(code))

  monkeypatch.setattr(os, 'write', refused)
  with pytest.raises(workdir_lib.WorkdirError) as error:
    workdir_lib.prepare(tmp_path)
  text = str(error.value)
  assert message in text and str(tmp_path) in text and '\n' not in text
  assert '--workdir' in text
  monkeypatch.undo()
  assert os.listdir(tmp_path) == []


def test_lock_refuses_a_second_holder_naming_the_first(tmp_path):
  with workdir_lib.lock(tmp_path):
    assert (tmp_path / '.lock').read_text() == f'{os.getpid()}\n'
    with pytest.raises(
        workdir_lib.WorkdirError,
        match=rf'in use by another run \(process {os.getpid()}\)',
    ):
      with workdir_lib.lock(tmp_path):
        pass
  with workdir_lib.lock(tmp_path):  # Released on exit.
    pass


def test_write_errors_converts_only_refused_writes(tmp_path):
  with pytest.raises(workdir_lib.WorkdirError, match='no space left'):
    with workdir_lib.write_errors(tmp_path):
      raise OSError(errno.ENOSPC, 'No space left on device', str(tmp_path))
  with pytest.raises(FileNotFoundError):
    with workdir_lib.write_errors(tmp_path):
      raise FileNotFoundError(errno.ENOENT, 'gone')


def write_rows(path, *steps, tail=''):
  path.write_text(''.join(json.dumps({'step': s}) + '\n' for s in steps) + tail)


def test_metrics_log_drops_rows_past_start_atomically(tmp_path, monkeypatch):
  path = tmp_path / 'metrics.jsonl'
  write_rows(path, 2, 4, 6)
  log = metrics.MetricsLog(str(tmp_path), start_step=4)
  assert [r['step'] for r in log.records] == [2, 4]
  log.write({'step': 6})
  assert [r['step'] for r in metrics.read(str(path))] == [2, 4, 6]

  def killed(*args):
    raise KeyboardInterrupt

  monkeypatch.setattr(os, 'replace', killed)
  with pytest.raises(KeyboardInterrupt):
    metrics.MetricsLog(str(tmp_path), start_step=2)
  assert [r['step'] for r in metrics.read(str(path))] == [2, 4, 6]


def test_torn_last_line_is_dropped(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  write_rows(path, 2, 4, tail='{"step": 6, "train_lo')
  assert [r['step'] for r in metrics.read(str(path))] == [2, 4]


@pytest.mark.parametrize(
    ('text', 'number'),
    [
        ('{"step": 2}\n{"step": 4, "lo\n{"step": 6}\n', 2),
        ('{"step": 2}\n{"step": 4, "lo\n', 2),  # Complete, yet broken.
        ('{"loss": 1.0}\n', 1),
        ('[2, 4]\n{"step": 6}', 1),
    ],
)
def test_broken_metrics_line_names_file_and_line(tmp_path, text, number):
  path = tmp_path / 'metrics.jsonl'
  path.write_text(text)
  with pytest.raises(ValueError) as error:
    metrics.read(str(path))
  message = str(error.value)
  assert message.startswith(f'{path}, line {number}: not a metrics row')
  assert 'fix or delete that line' in message and '\n' not in message
