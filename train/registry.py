"""The model registry: config.model's name -> the jaxbp.models network.

Each entry names its family (the CLI that trains it: `train.<family>`) and
a builder; `validate` checks a model config in one line, `model` builds and
initializes the network under one jit.
"""

import functools
import math

import jax.numpy as jnp
from flax import nnx

from jaxbp import models, nn

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


def positive_ints(key, values, prefix='config.model'):
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
    positive_ints('hidden_units', tuple(model_config.hidden_units))
  if model_config.name == 'vgg':
    positive_ints('groups', [len(g) for g in model_config.groups])
    for group in model_config.groups:
      positive_ints('groups', tuple(group))
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
