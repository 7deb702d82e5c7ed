"""The training loop shared by `train.mlp` and `train.convnet`."""

import contextlib
import dataclasses
import os
import signal
import threading
import time

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxbp import models
from train import (
    build,
    checkpoint,
    input_pipeline,
    metrics,
    optim,
    reporting,
    steps,
)
from train import workdir as workdir_lib

POSITIVE_INTS = (
    'batch_size',
    'eval_batch_size',
    'max_steps',
    'eval_every',
    'checkpoint_every',
    'keep_checkpoints',
    'log_every',
)


@dataclasses.dataclass
class Run:
  """What a call of `train_and_evaluate` returns."""

  records: list[dict]  # the rows of metrics.jsonl, one per evaluation
  state: dict  # final model + optimizer state as a pure dict of arrays
  step: int
  summary: str


def validate(config, model_names=build.MLP_MODELS + build.CONV_MODELS) -> None:
  """Checks every setting cheaply; raises a one-line ValueError."""
  for key in POSITIVE_INTS:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(
          f'config.{key} must be a positive integer, got {value!r}.'
      )
  devices = jax.device_count()
  for key in ('batch_size', 'eval_batch_size'):
    if config[key] % devices:
      raise ValueError(
          f'config.{key}={config[key]} must be divisible by the number of'
          f' devices ({devices}); the batch is split evenly across them.'
      )
  optim.validate(config)
  build.validate(config.model, model_names)
  input_pipeline.validate(config)


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


def _initial_state(config, model, ckpt, replicated, signature):
  """Splits model + optimizer for the compiled steps; restores a checkpoint.

  Returns the train- and eval-mode graph definitions (they differ in the
  modules' static `deterministic`/`use_running_average` flags), the RNG state
  (reseeded inside each step, so never saved), the replicated state, the
  running train sums and the step to start from.
  """
  optimizer = nnx.Optimizer(model, optim.make_optimizer(config), wrt=nnx.Param)
  model.eval()
  eval_def, rng_state, state = nnx.split((model, optimizer), nnx.RngState, ...)
  model.train()
  train_def, _, _ = nnx.split((model, optimizer), nnx.RngState, ...)
  state, rng_state = jax.device_put((state, rng_state), replicated)
  sums = jax.device_put(steps.zero_sums(), replicated)
  start = 0
  if ckpt.latest_step() is not None:
    start, saved = ckpt.restore(
        {'state': nnx.to_pure_dict(state), 'sums': sums}, signature
    )
    nnx.replace_by_pure_dict(state, saved['state'])
    sums = saved['sums']
  return train_def, eval_def, rng_state, state, sums, start


def _train_means(sums, batch_size):
  return (
      float(sums['loss'] / sums['steps']),
      float(sums['correct'] / (sums['steps'] * batch_size)),
  )


def _log_evaluation(log, bar, *, step, train, test, **fields) -> None:
  """Appends one row to metrics.jsonl and prints it above the progress bar."""
  (train_loss, train_accuracy), (test_loss, test_accuracy) = train, test
  log.write({
      'step': step,
      'train_loss': train_loss,
      'train_accuracy': train_accuracy,
      'test_loss': float(test_loss),
      'test_accuracy': float(test_accuracy),
      **fields,
  })
  bar.write(
      f'step {step}: train loss {train_loss:.4f} acc {train_accuracy:.4f} |'
      f' test loss {test_loss:.4f} acc {test_accuracy:.4f} |'
      f' {fields["images_per_sec"]:.0f} images/s'
  )


def train_and_evaluate(
    config,
    workdir: str,
    *,
    model_names=build.MLP_MODELS + build.CONV_MODELS,
    progress: bool | None = None,
) -> Run:
  """Trains `config.model` on `config.dataset`, resuming from workdir.

  Args:
    config: a locked `ml_collections.ConfigDict` (see `train/defaults.py`).
    workdir: where metrics.jsonl, the curves, config.json and the checkpoints
      go; a checkpoint already there is resumed from.
    model_names: the model names this entry point accepts.
    progress: show a progress bar; None = only when stderr is a terminal.
  """
  began = time.perf_counter()
  validate(config, model_names)
  workdir = workdir_lib.prepare(workdir)
  with workdir_lib.lock(workdir), workdir_lib.write_errors(workdir):
    return _run(config, workdir, began, progress)


def _data_identity(data) -> dict:
  # Until the data helper's `Dataset.identity` lands; then use that.
  if hasattr(data, 'identity'):
    return data.identity
  name = data.name
  if name.startswith('image_folder:'):
    name = 'image_folder:' + os.path.abspath(name[len('image_folder:') :])
  return {
      'name': name,
      'sizes': [len(data.train_labels), len(data.test_labels)],
      'class_names': list(data.class_names),
  }


def _run(config, workdir, began, progress) -> Run:
  ckpt = checkpoint.Checkpointer(workdir, config.keep_checkpoints)
  ckpt.check_signature(checkpoint.signature(config))
  data = input_pipeline.load(config)
  model = build.model(
      config.model, data.train_images.shape[1:], data.num_classes, config.seed
  )
  signature = checkpoint.signature(
      config, nnx.state(model, nnx.Param), _data_identity(data)
  )
  ckpt.check_signature(signature)
  print(models.summary(model, (1, *data.train_images.shape[1:])), flush=True)
  workdir_lib.atomic_write(
      os.path.join(workdir, 'config.json'),
      config.to_json_best_effort(indent=2) + '\n',
  )

  mesh = Mesh(jax.devices(), ('data',))
  replicated = NamedSharding(mesh, P())
  train_def, eval_def, rng_state, state, sums, start = _initial_state(
      config, model, ckpt, replicated, signature
  )

  normalize = input_pipeline.make_normalizer(
      data.train_images, config.normalization
  )
  train_step = steps.make_train_step(
      config, train_def, rng_state, normalize, mesh, data.num_classes
  )
  evaluate = steps.make_eval_step(config, eval_def, rng_state, normalize, mesh)
  train_images, train_labels = jax.device_put(
      (data.train_images, data.train_labels), replicated
  )
  test_images, test_labels = jax.device_put(
      steps.pad_for_eval(
          data.test_images, data.test_labels, config.eval_batch_size
      ),
      replicated,
  )

  log = metrics.MetricsLog(workdir, start)
  schedule = optim.make_schedule(config)
  bar = reporting.progress_bar(start, config.max_steps, progress)
  prior_wall = log.records[-1]['wall_time'] if log.records else 0.0
  timed = {'seconds': 0.0, 'steps': 0}  # after the first, compiling, step
  tick, tick_step = None, start

  def save(step):
    ckpt.save(
        step,
        {'state': nnx.to_pure_dict(state), 'sums': sums},
        {'signature': signature, 'step': step},
    )

  step = start
  with _catch_stop_signals() as caught, contextlib.closing(bar), ckpt:
    while step < config.max_steps and not caught:
      state, sums = train_step(
          state, sums, np.int32(step), train_images, train_labels
      )
      step += 1
      if tick is None:
        jax.block_until_ready(sums)
        tick, tick_step = time.perf_counter(), step
      is_eval = step % config.eval_every == 0 or step == config.max_steps
      is_ckpt = step % config.checkpoint_every == 0 or is_eval or caught
      if not (is_eval or is_ckpt or step % config.log_every == 0):
        continue
      host = jax.device_get(sums)
      _check_finite(host, ckpt)
      now = time.perf_counter()
      ips = (step - tick_step) * config.batch_size / max(now - tick, 1e-9)
      train_loss, train_accuracy = _train_means(host, config.batch_size)
      bar.update(step - bar.n)
      bar.set_postfix(
          loss=f'{train_loss:.4f}',
          acc=f'{train_accuracy:.4f}',
          img_s=f'{ips:.0f}',
      )
      if is_eval:
        timed['seconds'] += now - tick
        timed['steps'] += step - tick_step
        _log_evaluation(
            log,
            bar,
            step=step,
            train=(train_loss, train_accuracy),
            test=jax.device_get(evaluate(state, test_images, test_labels)),
            images_per_sec=ips,
            learning_rate=float(schedule(step - 1)),
            epoch=step * config.batch_size / len(data.train_labels),
            wall_time=prior_wall + time.perf_counter() - began,
        )
        sums = jax.device_put(steps.zero_sums(), replicated)
      if is_ckpt:
        save(step)
      if is_eval:
        tick, tick_step = time.perf_counter(), step

  if log.records:
    title = f'{config.model.name} on {data.name}'
    reporting.plot_curves(log.records, workdir, title)
  ips = timed['steps'] * config.batch_size / max(timed['seconds'], 1e-9)
  wall = prior_wall + time.perf_counter() - began
  summary = reporting.summary(log.records, step, wall, ips)
  if caught:
    summary = (
        f'stopped by signal {caught[0]} at step {step}; checkpoint saved,'
        f' rerun the same command to resume. {summary}'
    )
  print(summary, flush=True)
  return Run(
      log.records, jax.device_get(nnx.to_pure_dict(state)), step, summary
  )
