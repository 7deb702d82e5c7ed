r"""The seeds' ConvNet protocol: VGG of Table 1 on CIFAR-10.

Conv3x3-BN-ReLU groups 64 | 128 | 256,256 | 512,512 | 512,512, each followed
by a 3x3/2 max-pool, then Linear(512, 10) (9,231,114 parameters); Adam at 1e-4,
batch 32, 5000 steps, evaluation every 500 (seeds: ~0.75 test accuracy).

  python -m train.convnet --config configs/vgg.py \
      --config.dataset=image_folder:../shared/data/cifar10 --workdir runs/vgg

Result: not measured here. This project's machine has 2 shared CPU cores and
no GPU, so no VGG run was made on CIFAR-10; the config was only checked to run
(a few steps on `--config.dataset=digits`).
"""

from train import defaults


def get_config():
  config = defaults.base_config(defaults.convnet_model('vgg'))
  config.dataset = 'cifar10'
  config.normalization = 'per_channel'
  config.optimizer = 'adam'
  config.learning_rate = 1e-4
  config.batch_size = 32
  config.max_steps = 5000
  config.eval_every = 500
  config.eval_batch_size = 500
  config.checkpoint_every = 500
  config.seed = 42
  return config
