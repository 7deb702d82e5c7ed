"""Orbax checkpoints verified by a digest, with fallback to an intact one."""

import errno
import hashlib
import json
import os
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from train import distributed, orbax_errors


def signature(config, params=None, data_identity=None) -> dict:
  """What makes a checkpoint loadable: model, optimizer, data, param shapes.

  Without `params` and `data_identity` (`Dataset.identity`: name or folder,
  split sizes, class names) only the config part is built, before the data is
  loaded; `Checkpointer.check_signature` compares the keys given. Data,
  normalization, batch order and loss reduction keep a resumed run from
  mixing two data sets of one shape or two protocols.

  `model.vjp` and `model.dtype` are left out: they change how the same
  parameters are computed with, so a run may resume with either value.
  """
  model = config.model.to_dict()
  result = {
      'model': {k: v for k, v in model.items() if k not in ('vjp', 'dtype')},
      'optimizer': config.optimizer,
      'normalization': config.normalization,
      # How batches are drawn and the loss reduced: a resumed run under
      # another protocol would mix two.
      'batch_order': config.batch_order,
      'loss_reduction': config.loss_reduction,
  }
  if data_identity is not None:
    result['data'] = data_identity
  if params is not None:
    result['params'] = {
        jax.tree_util.keystr(path): list(x.shape)
        for path, x in jax.tree_util.tree_leaves_with_path(params)
    }
  # A JSON round trip turns tuples into lists, so saved and fresh compare equal.
  return json.loads(json.dumps(result))


def digest(tree) -> str:
  """SHA-256 over the leaves of `tree` in key order: path, dtype, shape, bytes."""
  sha = hashlib.sha256()
  leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(tree))
  for key, x in sorted((jax.tree_util.keystr(p), x) for p, x in leaves):
    x = np.ascontiguousarray(x)
    sha.update(f'{key} {x.dtype} {x.shape}\n'.encode())
    sha.update(x.tobytes())
  return sha.hexdigest()


class _Damaged(Exception):
  """A checkpoint that cannot be restored as saved; the message says why."""


class Checkpointer:
  """Keeps the last `keep` checkpoints of (state, metadata) under workdir.

  Each checkpoint's metadata carries the `digest` of its arrays. `restore`
  takes the newest checkpoint whose metadata reads and whose arrays match
  their digest; each newer, damaged one is moved to
  workdir/checkpoints_damaged/<step>-<time> (out of Orbax's sight, never
  deleted) with one printed line. When none is intact nothing is moved and
  a one-line ValueError names them all.
  """

  def __init__(self, workdir: str, keep: int):
    workdir = os.path.abspath(workdir)
    self.directory = os.path.join(workdir, 'checkpoints')
    self.damaged_directory = os.path.join(workdir, 'checkpoints_damaged')
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            # Synchronous: the train step donates its state buffers.
            enable_async_checkpointing=False,
            create=True,
        ),
    )

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def _newest_intact(self, load):
    """(step, load(step), [(step, reason) of newer damaged ones]), or raises.

    `load` raises `_Damaged`; none intact is a one-line ValueError.
    """
    damaged = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        return step, load(step), damaged
      except _Damaged as e:
        damaged.append((step, str(e)))
    if damaged:
      listed = '; '.join(f'step {s}: {reason}' for s, reason in damaged)
      raise ValueError(
          f'no intact checkpoint in {self.directory} ({listed}); nothing was'
          ' moved or deleted. Put an intact copy back, or move that folder'
          ' away to start over (or use another --workdir).'
      )
    return None, None, damaged

  def _meta(self, step: int) -> dict:
    try:
      with orbax_errors.quiet():
        meta = self.manager.restore(
            step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
        )['meta']
    except Exception as e:  # Any unreadable file is damage.
      raise _Damaged(
          f'its metadata is unreadable ({orbax_errors.reason(e)})'
      ) from None
    if not isinstance(meta, dict) or not isinstance(meta.get('digest'), str):
      raise _Damaged('its metadata holds no digest of its arrays')
    return meta

  def check_signature(self, expected: dict) -> None:
    """One-line ValueError if the newest readable checkpoint is another run."""
    step, meta, _ = self._newest_intact(self._meta)
    if step is not None:
      self._compare(step, meta, expected)

  def _compare(self, step: int, meta: dict, expected: dict) -> None:
    saved = meta.get('signature') or {}
    diff = [k for k in expected if saved.get(k) != expected[k]]
    if diff:
      what = 'data set' if {'data', 'normalization'} >= set(diff) else 'model'
      raise ValueError(
          f'{self.directory} holds a checkpoint (step {step}) of a different'
          f' {what} (differs in: {", ".join(diff)}; saved {diff[0]}:'
          f' {saved.get(diff[0])}); use another --workdir or delete it.'
      )

  def restore(self, state, expected: dict | None = None):
    """(step, state) of the newest intact checkpoint, shaped like `state`.

    With `expected`, the signature saved with that checkpoint is checked.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)

    def load(step):
      meta = self._meta(step)
      if expected is not None:
        self._compare(step, meta, expected)
      try:
        with orbax_errors.quiet():
          restored = self.manager.restore(
              step,
              args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)),
          )['state']
      except Exception as e:  # Any unreadable file is damage.
        raise _Damaged(
            f'its arrays are unreadable ({orbax_errors.reason(e)})'
        ) from None
      if digest(restored) != meta['digest']:
        raise _Damaged('its arrays do not match their saved digest')
      return restored

    step, restored, damaged = self._newest_intact(load)
    self._set_aside(damaged, step)
    return step, restored

  def _set_aside(self, damaged: list, restored_step: int) -> None:
    """Moves each damaged checkpoint out of the step folder, one line each."""
    if not damaged:
      return
    # Every process found the same damage; one moves it, all then reload.
    if jax.process_index() == 0:
      self._move_aside(damaged, restored_step)
    distributed.sync('jaxbp-checkpoints-set-aside')
    self.manager.reload()

  def _move_aside(self, damaged: list, restored_step: int) -> None:
    os.makedirs(self.damaged_directory, exist_ok=True)
    stamp = time.strftime('%Y%m%d-%H%M%S')
    for step, reason in damaged:
      target = os.path.join(self.damaged_directory, f'{step}-{stamp}')
      os.rename(os.path.join(self.directory, str(step)), target)
      print(
          f'checkpoint step {step} is damaged ({reason}); moved it to'
          f' {target} and resuming from step {restored_step}.',
          file=sys.stderr,
          flush=True,
      )

  def save(self, step: int, state, meta: dict) -> None:
    """Saves `state` with `meta` and its digest; a full disk: OSError(ENOSPC).

    The checkpoints saved before stay whole: Orbax writes to a temporary
    folder and renames it.
    """
    if step in self.manager.all_steps():
      return
    meta = {**meta, 'digest': digest(state)}
    try:
      with orbax_errors.quiet():
        self.manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                meta=ocp.args.JsonSave(meta),
            ),
            force=True,
        )
    except ValueError as e:
      if 'RESOURCE_EXHAUSTED' not in str(e):
        raise
      # TensorStore reports ENOSPC as a ValueError("RESOURCE_EXHAUSTED: ...").
      raise OSError(
          errno.ENOSPC,
          os.strerror(errno.ENOSPC),
          os.path.join(self.directory, str(step)),
      ) from None

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, traceback):
    try:
      self.close()
    except Exception:
      if exc_type is None:
        raise
      # The error in flight (e.g. a full disk) is the one to report.

  def close(self) -> None:
    with orbax_errors.quiet():
      self.manager.wait_until_finished()
      self.manager.close()
