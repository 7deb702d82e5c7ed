"""The keys every config shares, with their defaults (Flax examples' style).

Each `configs/<name>.py` starts from `get_config()` and overrides what its
protocol fixes, so every config has the same keys and `--config.<key>=<value>`
works on all of them. `mlp_model` and `convnet_model` give `config.model`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """Every key the training loop reads; `config.model` is a small MLP."""
  config = ml_collections.ConfigDict()
  # Data (read by train/input_pipeline.py).
  config.dataset = 'digits'  # tfds name | 'image_folder:PATH' | 'digits'
  config.data_dir = ml_collections.FieldReference(None, field_type=str)
  # 'per_channel': (x/255 - channel mean) / channel std | 'unit': x/255 |
  # 'mean_image': x/255 - mean image | 'raw': x (0..255) | 'raw_mean_image':
  # x - mean image, on the 0..255 scale (see input_pipeline.make_normalizer).
  config.normalization = 'per_channel'
  config.random_crop_padding = 0  # 0 = no random crop
  config.random_flip = False
  config.validation_size = 0  # >0: evaluate on this many held-out train images
  config.image_size = ml_collections.FieldReference(None, field_type=int)
  config.seed = 42
  # 'shuffle': a fresh permutation each epoch | 'in_order': batch i of each
  # epoch is examples [i B, (i + 1) B) | 'sample': each batch drawn with
  # replacement from (seed, step). All drop an epoch's last partial batch.
  config.batch_order = 'shuffle'
  # Optimization.
  config.optimizer = 'sgd'  # 'sgd' | 'momentum' | 'adam' | 'adamw'
  config.learning_rate = 1e-3
  config.momentum = 0.9  # 'momentum' only
  config.nesterov = False  # 'momentum' only
  config.weight_decay = 0.0  # decoupled for 'adamw', added to the loss else
  config.grad_clip_norm = 0.0  # 0 = no clipping
  # 'constant' | 'cosine' | 'warmup_cosine' | 'piecewise'
  config.schedule = 'constant'
  config.warmup_steps = 0  # 'warmup_cosine' only
  config.decay_boundaries = (0.5, 0.75)  # 'piecewise': fractions of max_steps
  config.decay_factor = 0.1  # 'piecewise': lr multiplier at each boundary
  config.label_smoothing = 0.0
  # The loss the gradient is taken of: 'mean' over the batch | 'sum' (batch
  # size times the gradient, as vugrad steps: its learning rate then applies as
  # it is; weight decay is not scaled). Logged train losses stay per-example
  # means.
  config.loss_reduction = 'mean'
  config.batch_size = 128
  config.max_steps = 1000
  # Evaluation, checkpoints, logging.
  config.eval_every = 100
  config.eval_batch_size = 1000
  config.checkpoint_every = 1000
  config.keep_checkpoints = 3
  config.log_every = 20  # progress bar refresh, in steps
  config.model = mlp_model()
  return config


def mlp_model(**overrides) -> ml_collections.ConfigDict:
  """`config.model` for `jaxbp.models.MLP` (train.mlp)."""
  model = ml_collections.ConfigDict({
      'name': 'mlp',
      'hidden_units': (100,),
      'activation': 'leaky_relu',  # relu | leaky_relu | elu | tanh | sigmoid
      'negative_slope': 0.01,  # leaky_relu only
      'norm': ml_collections.FieldReference(
          None, field_type=str
      ),  # batch|layer
      'dropout': 0.0,  # in [0, 1)
      'residual': False,  # adds hidden layer 1 to hidden layer 3
      # default (Flax's truncated LeCun normal) | lecun | kaiming | normal |
      # vugrad | pytorch; see jaxbp/nn/initializers.py.
      'kernel_init': 'default',
      'init_std': 0.01,  # kernel_init=normal only: the weights' std
      'vjp': 'manual',  # manual (hand-written backward) | autodiff
      'dtype': 'float32',  # float32 | bfloat16 (compute; params stay float32)
  })
  model.update(overrides)
  return model


# The seeds' Table 1: the conv3x3-BN-ReLU widths of each group of the VGG.
VGG_TABLE1 = ((64,), (128,), (256, 256), (512, 512), (512, 512))


def convnet_model(name: str = 'vgg', **overrides) -> ml_collections.ConfigDict:
  """`config.model` for `jaxbp.models.VGG` or `SmallConvNet` (train.convnet)."""
  model = ml_collections.ConfigDict({
      'name': name,  # vgg | small_convnet
      'groups': VGG_TABLE1,  # vgg only: widths per group, a max-pool after each
      'padding': 'VALID',  # small_convnet only: SAME for images under 14x14
      'dropout': 0.0,  # small_convnet only: before each fully connected layer
      'kernel_init': 'default',  # as in mlp_model
      'init_std': 0.01,  # kernel_init=normal only
      'vjp': 'manual',
      'dtype': 'float32',
  })
  model.update(overrides)
  return model
