"""Builds a run: `validate_config`, then `setup` for the training loop.

`setup` goes one way: data -> model (from `registry.MODELS`) -> optimizer ->
checkpoint (signature checked once) -> the start step.
"""

import dataclasses
from collections.abc import Callable

import jax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxbp import models
from train import (
    checkpoint,
    distributed,
    input_pipeline,
    metrics,
    optim,
    registry,
    reporting,
    steps,
)

POSITIVE_INTS = (
    'batch_size',
    'eval_batch_size',
    'max_steps',
    'eval_every',
    'checkpoint_every',
    'keep_checkpoints',
    'log_every',
)


def validate_config(config) -> optim.Settings:
  """Checks every setting cheaply; raises a one-line ValueError."""
  for key in POSITIVE_INTS:
    registry.positive_ints(key, (config[key],), prefix='config')
  devices = jax.device_count()
  for key in ('batch_size', 'eval_batch_size'):
    if config[key] % devices:
      raise ValueError(
          f'config.{key}={config[key]} must be divisible by the number of'
          f' devices ({devices}); the batch is split evenly across them.'
      )
  registry.validate(config.model)
  input_pipeline.validate(config)
  steps.validate(config)
  return optim.Settings.from_config(config)


@dataclasses.dataclass
class Session:
  """What `setup` prepares for the loop; arrays are on the mesh, replicated."""

  config: object  # the validated, locked ConfigDict
  hp: steps.Hparams
  net: steps.Network
  rngs: nnx.State
  state: nnx.State  # model + optimizer, without the RNG state
  sums: dict  # `steps.zero_sums()`, or the restored ones
  start: int
  train: tuple  # (images, labels)
  test: tuple  # padded to whole eval batches
  ckpt: checkpoint.Checkpointer
  log: metrics.MetricsLog
  schedule: Callable
  signature: dict
  replicated: NamedSharding
  title: str


def setup(config, settings: optim.Settings, workdir: str) -> Session:
  """Loads the data, builds model + optimizer, restores, places.

  `settings` is what `validate_config(config)` returned; `workdir` exists.
  """
  data = input_pipeline.load(config)
  shape = data.train_images.shape[1:]
  network = registry.model(config.model, shape, data.num_classes, config.seed)
  schedule = optim.make_schedule(settings)
  tx = optim.make_optimizer(settings, schedule)
  optimizer = nnx.Optimizer(network, tx, wrt=nnx.Param)
  ckpt, signature = _open_checkpoints(config, workdir, network, data)
  try:
    if distributed.is_primary():
      print(models.summary(network, (1, *shape)), flush=True)
    mesh = Mesh(jax.devices(), ('data',))
    replicated = NamedSharding(mesh, P())
    graphdef, rngs, state, sums, start = steps.start_state(
        (network, optimizer), ckpt, replicated, signature
    )
    normalize = input_pipeline.make_normalizer(
        data.train_images, config.normalization
    )
    test = (data.test_images, data.test_labels, config.eval_batch_size)
    return Session(
        config=config,
        hp=steps.Hparams.from_config(config, data.num_classes),
        net=steps.Network(graphdef, normalize, NamedSharding(mesh, P('data'))),
        rngs=rngs,
        state=state,
        sums=sums,
        start=start,
        # Each process puts both splits (it loaded them) on its own devices.
        train=distributed.put_replicated(
            (data.train_images, data.train_labels), replicated
        ),
        test=distributed.put_replicated(steps.pad_for_eval(*test), replicated),
        ckpt=ckpt,
        log=metrics.MetricsLog(workdir, start, distributed.is_primary()),
        schedule=schedule,
        signature=signature,
        replicated=replicated,
        title=f'{config.model.name} on {data.name}',
    )
  except BaseException:
    ckpt.close()
    raise


def _open_checkpoints(config, workdir, network, data) -> tuple:
  """The workdir's checkpointer, once it holds no other run's checkpoint."""
  ckpt = checkpoint.Checkpointer(workdir, config.keep_checkpoints)
  signature = checkpoint.signature(
      config, nnx.state(network, nnx.Param), data.identity
  )
  try:
    ckpt.check_signature(signature)
  except BaseException:
    ckpt.close()
    raise
  if distributed.is_primary():  # Only once the run is accepted.
    reporting.write_config(workdir, config)
  return ckpt, signature
