"""The training pipeline shared by `train.mlp` and `train.convnet`.

`train_and_evaluate` validates the config once, takes the workdir's lock, runs
`build.setup` (data -> model -> optimizer -> checkpoint -> start step), then
`_train`, a loop over the compiled `steps.train_step` with `steps.evaluate`
every `eval_every` steps, then draws the curves.
"""

import contextlib
import dataclasses
import signal
import threading
import time

import jax
import numpy as np
from flax import nnx

from jaxbp import _memory
from train import build, checkpoint, distributed, reporting, steps
from train import workdir as workdir_lib


@dataclasses.dataclass
class Run:
  """What a call of `train_and_evaluate` returns."""

  records: list[dict]  # the rows of metrics.jsonl, one per evaluation
  state: dict  # final model + optimizer state as a pure dict of arrays
  step: int
  summary: str


class Interrupted(KeyboardInterrupt):
  """SIGINT or SIGTERM outside the loop; the message says what is saved."""


@contextlib.contextmanager
def _catch_stop_signals():
  """Turns SIGTERM/SIGINT into a flag the loop checks after each step."""
  caught = []
  previous = {}
  if threading.current_thread() is threading.main_thread():
    for signum in (signal.SIGTERM, signal.SIGINT):
      previous[signum] = signal.signal(
          signum, lambda signum, frame: caught.append(signum)
      )
  try:
    yield caught
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)


def _check_finite(sums: dict, ckpt: checkpoint.Checkpointer) -> None:
  bad = int(sums['nonfinite_step'])
  if bad >= 0:
    raise FloatingPointError(
        f'the training loss became NaN or Inf at step {bad}; stopped without'
        f' saving it. The last good checkpoint (step {ckpt.latest_step()}) is'
        f' in {ckpt.directory}; lower config.learning_rate or set'
        ' config.grad_clip_norm.'
    )


def _train(s: build.Session, caught: list, bar, speed, wall) -> tuple:
  """Steps from `s.start` to max_steps (or a signal); returns (state, step)."""
  c, state, sums, step = s.config, s.state, s.sums, s.start
  stop = False
  while step < c.max_steps and not stop:
    state, sums = steps.train_step(
        s.hp, s.net, s.rngs, state, sums, np.int32(step), *s.train
    )
    step += 1
    # Every process must stop at the same step (the checkpoint is saved by
    # all of them): with several, they agree each log_every steps.
    if jax.process_count() == 1 or step % c.log_every == 0:
      stop = distributed.any_process(bool(caught))
    if speed.tick is None:
      jax.block_until_ready(sums)
      _memory.trim()  # What compiling the step freed (jaxbp/_memory.py).
      speed.start(step)
    is_eval = step % c.eval_every == 0 or step == c.max_steps
    is_ckpt = step % c.checkpoint_every == 0 or is_eval or stop
    if not (is_eval or is_ckpt or step % c.log_every == 0):
      continue
    host = jax.device_get(sums)
    _check_finite(host, s.ckpt)
    ips = speed.rate(step)
    count = host['steps']
    train = (
        float(host['loss'] / count),
        float(host['correct'] / (count * c.batch_size)),
    )
    reporting.show_progress(bar, step, train, ips)
    if is_eval:
      speed.lap(step)
      test = steps.evaluate(s.hp, s.net, s.rngs, state, *s.test)
      reporting.log_evaluation(
          s.log,
          bar,
          step=step,
          train=train,
          test=jax.device_get(test),
          images_per_sec=ips,
          learning_rate=float(s.schedule(step - 1)),
          epoch=step * c.batch_size / len(s.train[1]),
          wall_time=wall(),
      )
      sums = distributed.put_replicated(steps.zero_sums(), s.replicated)
    if is_ckpt:
      tree = {'state': nnx.to_pure_dict(state), 'sums': sums}
      s.ckpt.save(step, tree, {'signature': s.signature, 'step': step})
    if is_eval:
      speed.start(step)
  return state, step


def train_and_evaluate(
    config, workdir: str, *, progress: bool | None = None
) -> Run:
  """Trains `config.model` on `config.dataset`, resuming from workdir.

  Args:
    config: a locked `ml_collections.ConfigDict` (see `configs/default.py`).
    workdir: where metrics.jsonl, the curves, config.json and the checkpoints
      go; a checkpoint already there is resumed from.
    progress: show a progress bar; None = only when stderr is a terminal.

  Raises:
    ValueError, FloatingPointError: one line naming the problem.
    Interrupted: SIGINT during start-up (nothing trained, nothing saved
      changed) or while drawing the curves (all is saved).
  """
  began = time.perf_counter()
  settings = build.validate_config(config)  # Before anything is written.
  workdir = workdir_lib.prepare(workdir)
  index = jax.process_index()  # Each process of a run locks its own file.
  lock_name = '.lock' if index == 0 else f'.lock.{index}'
  with workdir_lib.lock(workdir, lock_name), workdir_lib.write_errors(workdir):
    return _run(config, settings, workdir, progress, began)


def _run(config, settings, workdir: str, progress, began: float) -> Run:
  """`train_and_evaluate` once the config is valid, in the workdir's lock."""
  try:
    s = build.setup(config, settings, workdir)
  except KeyboardInterrupt:
    raise Interrupted(
        'interrupted during start-up, before the first step: nothing was'
        ' trained and no checkpoint written; rerun the command to start.'
    ) from None
  prior_wall = s.log.records[-1]['wall_time'] if s.log.records else 0.0
  wall = lambda: prior_wall + time.perf_counter() - began
  speed = reporting.Throughput(config.batch_size)
  primary = distributed.is_primary()
  bar = reporting.progress_bar(
      s.start, config.max_steps, progress if primary else False
  )
  with _catch_stop_signals() as caught, contextlib.closing(bar), s.ckpt:
    state, step = _train(s, caught, bar, speed, wall)
  try:
    if s.log.records and primary:
      reporting.plot_curves(s.log.records, workdir, s.title)
  except KeyboardInterrupt:
    raise Interrupted(
        f'interrupted while drawing the curves: the checkpoint of step {step}'
        ' and metrics.jsonl are saved; rerun the command to redraw them.'
    ) from None
  summary = reporting.summary_line(s.log.records, step, wall(), speed.mean())
  if step < config.max_steps:  # A signal here or to a peer stopped the loop.
    signum = caught[0] if caught else 'to another process'
    summary = (
        f'stopped by signal {signum} at step {step}; checkpoint saved,'
        f' rerun the same command to resume. {summary}'
    )
  if primary:
    print(summary, flush=True)
  state = jax.device_get(nnx.to_pure_dict(state))
  return Run(s.log.records, state, step, summary)
