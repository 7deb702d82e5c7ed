"""Orbax checkpoints of the training state, with a model signature check."""

import json
import os

import jax
import orbax.checkpoint as ocp


def signature(config, params=None) -> dict:
  """What makes a checkpoint loadable: model config, optimizer, param shapes.

  Without `params` (before the data is loaded) only the config part is built;
  `Checkpointer.check_signature` compares the keys given.

  `model.vjp` and `model.dtype` are left out: they change how the same
  parameters are computed with, so a run may resume with either value.
  """
  model = {
      k: v
      for k, v in config.model.to_dict().items()
      if k not in ('vjp', 'dtype')
  }
  result = {'model': model, 'optimizer': config.optimizer}
  if params is not None:
    result['params'] = {
        jax.tree_util.keystr(path): list(x.shape)
        for path, x in jax.tree_util.tree_leaves_with_path(params)
    }
  # A JSON round trip turns tuples into lists, so saved and fresh compare equal.
  return json.loads(json.dumps(result))


class Checkpointer:
  """Keeps the last `keep` checkpoints of (state, metadata) under workdir."""

  def __init__(self, workdir: str, keep: int):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
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

  def check_signature(self, expected: dict) -> None:
    """Raises a one-line ValueError if the latest checkpoint is another model."""
    step = self.latest_step()
    if step is None:
      return
    meta = self.manager.restore(
        step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
    )['meta']
    saved = meta.get('signature') or {}
    diff = [k for k in expected if saved.get(k) != expected[k]]
    if diff:
      raise ValueError(
          f'{self.directory} holds a checkpoint (step {step}) of a different'
          f' model (differs in: {", ".join(diff)}; saved model:'
          f' {saved.get("model")}); use another --workdir or delete it.'
      )

  def restore(self, state):
    """Returns (step, state restored into the structure and sharding of state)."""
    step = self.latest_step()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    restored = self.manager.restore(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)),
    )
    return step, restored['state']

  def save(self, step: int, state, meta: dict) -> None:
    if step in self.manager.all_steps():
      return
    self.manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
        ),
        force=True,
    )

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
