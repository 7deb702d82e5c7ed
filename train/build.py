"""Builds the `jaxbp.models` network that `config.model` names."""

import functools
import json

import jax.numpy as jnp
import ml_collections
from flax import nnx

from jaxbp import models

MLP_MODELS = ('mlp',)
CONV_MODELS = ('vgg', 'small_convnet')
VJPS = ('manual', 'autodiff')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def validate(model_config, names: tuple[str, ...]) -> None:
  """Raises a one-line ValueError for an unknown model or bad model setting."""
  if model_config.name not in names:
    raise ValueError(
        f'config.model.name={model_config.name!r} is not one of'
        f' {", ".join(names)} (train.mlp trains {", ".join(MLP_MODELS)};'
        f' train.convnet trains {", ".join(CONV_MODELS)}).'
    )
  if model_config.vjp not in VJPS:
    raise ValueError(
        f'config.model.vjp={model_config.vjp!r} is unknown; use one of'
        f' {", ".join(VJPS)}.'
    )
  if model_config.dtype not in DTYPES:
    raise ValueError(
        f'config.model.dtype={model_config.dtype!r} is unknown; use one of'
        f' {", ".join(DTYPES)}.'
    )
  if model_config.name == 'mlp':
    units = tuple(model_config.hidden_units)
    if not units or not all(isinstance(u, int) and u > 0 for u in units):
      raise ValueError(
          f'config.model.hidden_units must be positive integers, got {units}.'
      )
    if not 0 <= model_config.dropout < 1:
      raise ValueError(
          f'config.model.dropout must be in [0, 1), got {model_config.dropout}.'
      )


def model(model_config, image_shape, num_classes: int, seed: int):
  """The model for images of `image_shape` (H, W, C), initialized from seed."""
  spec = json.dumps(model_config.to_dict(), sort_keys=True)
  return _init(spec, tuple(image_shape), num_classes, seed)


# Initializing under one jit compiles one program instead of one per layer and
# initializer; the static arguments let identical models share it.
@functools.partial(nnx.jit, static_argnums=(0, 1, 2, 3))
def _init(spec, image_shape, num_classes, seed):
  model_config = ml_collections.ConfigDict(json.loads(spec))
  rngs = nnx.Rngs(params=seed, dropout=seed)
  dtype = DTYPES[model_config.dtype]
  height, width, channels = image_shape
  if model_config.name == 'mlp':
    return models.MLP(
        height * width * channels,
        tuple(model_config.hidden_units),
        num_classes,
        activation=model_config.activation,
        negative_slope=model_config.negative_slope,
        norm=model_config.norm,
        dropout=model_config.dropout,
        residual=model_config.residual,
        vjp=model_config.vjp,
        dtype=dtype,
        rngs=rngs,
    )
  if model_config.name == 'vgg':
    return models.VGG(
        num_classes,
        in_channels=channels,
        vjp=model_config.vjp,
        dtype=dtype,
        rngs=rngs,
    )
  return models.SmallConvNet(
      num_classes,
      in_channels=channels,
      image_size=(height, width),
      padding=model_config.padding,
      vjp=model_config.vjp,
      dtype=dtype,
      rngs=rngs,
  )
