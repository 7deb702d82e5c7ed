"""Builds a run: the model registry, then `setup` for the training loop.

`setup` goes one way: validate the config once -> data -> model (from the
registry, `MODELS`) -> optimizer -> checkpoint (signature checked once) ->
the start step.
"""

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxbp import models, nn
from train import (
    checkpoint,
    distributed,
    input_pipeline,
    metrics,
    optim,
    reporting,
    steps,
)

VJPS = ('manual', 'autodiff')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
PADDINGS = ('SAME', 'VALID')


def _mlp(m, image_shape, num_classes, **kw):
  keys = ('activation', 'negative_slope', 'norm', 'dropout', 'residual')
  keys += ('kernel_init', 'init_std')
  return models.MLP(
      math.prod(image_shape),
      tuple(m['hidden_units']),
      num_classes,
      **{k: m[k] for k in keys},
      **kw,
  )


def _vgg(m, image_shape, num_classes, **kw):
  groups, channels = m['groups'], image_shape[2]
  kw |= {k: m[k] for k in ('kernel_init', 'init_std')}
  return models.VGG(num_classes, in_channels=channels, groups=groups, **kw)


def _small_convnet(m, image_shape, num_classes, **kw):
  (height, width, channels), padding = image_shape, m['padding']
  return models.SmallConvNet(
      num_classes,
      in_channels=channels,
      image_size=(height, width),
      padding=padding,
      **{k: m[k] for k in ('dropout', 'kernel_init', 'init_std')},
      **kw,
  )


# name -> (family: the CLI that trains it, train.<family>; builder).
MODELS = {
    'mlp': ('mlp', _mlp),
    'vgg': ('convnet', _vgg),
    'small_convnet': ('convnet', _small_convnet),
}


def names(family: str | None = None) -> tuple[str, ...]:
  """The registered model names, or those of one family."""
  return tuple(n for n, (f, _) in MODELS.items() if family in (None, f))


def check_family(name: str, family: str | None = None) -> None:
  """Raises a one-line ValueError unless `train.<family>` trains `name`.

  With `family=None`, any registered model passes.
  """
  if name not in MODELS or family not in (None, MODELS[name][0]):
    raise ValueError(
        f'config.model.name={name!r} is not one of {", ".join(names(family))}'
        f' (train.mlp trains {", ".join(names("mlp"))}; train.convnet trains'
        f' {", ".join(names("convnet"))}).'
    )


def _one_of(key, value, allowed):
  if value not in allowed:
    raise ValueError(
        f'config.model.{key}={value!r} is unknown; use one of'
        f' {", ".join(allowed)}.'
    )


def _positive_ints(key, values, prefix='config.model'):
  if not values or not all(
      isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
  ):
    if prefix == 'config':  # One value.
      raise ValueError(
          f'config.{key} must be a positive integer, got {values[0]!r}.'
      )
    raise ValueError(f'{prefix}.{key} must be positive integers, got {values}.')


def validate(model_config) -> None:
  """Raises a one-line ValueError for an unknown model or bad model setting."""
  check_family(model_config.name)
  _one_of('vjp', model_config.vjp, VJPS)
  _one_of('dtype', model_config.dtype, tuple(DTYPES))
  _check_init(model_config)
  _check_dropout(model_config)
  if model_config.name == 'mlp':
    _positive_ints('hidden_units', tuple(model_config.hidden_units))
  if model_config.name == 'vgg':
    _positive_ints('groups', [len(g) for g in model_config.groups])
    for group in model_config.groups:
      _positive_ints('groups', tuple(group))
  if model_config.name == 'small_convnet':
    _one_of('padding', model_config.padding, PADDINGS)


def _check_init(model_config):
  try:
    nn.initializers.check(model_config.kernel_init, model_config.init_std)
  except ValueError as e:
    raise ValueError(f'config.model.{e}') from None


def _check_dropout(model_config):
  rate = model_config.dropout
  if model_config.name == 'vgg' and rate:
    raise ValueError(
        f"config.model.dropout={rate}: vgg has no dropout (the seeds' Table 1"
        ' has none); use 0, or model.name=small_convnet or mlp.'
    )
  # The op and the layer take rates in [0, 1); 1 would drop everything.
  if not 0 <= rate < 1:
    raise ValueError(f'config.model.dropout must be in [0, 1), got {rate}.')


def model(model_config, image_shape, num_classes: int, seed: int):
  """The model for images of `image_shape` (H, W, C), initialized from seed."""
  frozen = tuple(sorted((k, _hashable(v)) for k, v in model_config.items()))
  return _init(frozen, tuple(image_shape), num_classes, seed)


def _hashable(value):
  if isinstance(value, list | tuple):
    return tuple(_hashable(v) for v in value)
  return value


# Initializing under one jit compiles one program instead of one per layer and
# initializer; static (hashable) arguments let identical models share it.
@functools.partial(nnx.jit, static_argnums=(0, 1, 2, 3))
def _init(frozen, image_shape, num_classes, seed):
  m = dict(frozen)
  return MODELS[m['name']][1](
      m,
      image_shape,
      num_classes,
      vjp=m['vjp'],
      dtype=DTYPES[m['dtype']],
      rngs=nnx.Rngs(params=seed, dropout=seed),
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
    _positive_ints(key, (config[key],), prefix='config')
  devices = jax.device_count()
  for key in ('batch_size', 'eval_batch_size'):
    if config[key] % devices:
      raise ValueError(
          f'config.{key}={config[key]} must be divisible by the number of'
          f' devices ({devices}); the batch is split evenly across them.'
      )
  validate(config.model)
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
  network = model(config.model, shape, data.num_classes, config.seed)
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
