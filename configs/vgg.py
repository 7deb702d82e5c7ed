r"""The seeds' ConvNet protocol: VGG of Table 1 on CIFAR-10.

Conv3x3-BN-ReLU groups 64 | 128 | 256,256 | 512,512 | 512,512, each followed
by a 3x3/2 max-pool, then Linear(512, 10) (9,231,114 parameters); Adam at 1e-4,
batch 32, 5000 steps, evaluation every 500 (seeds: ~0.75 test accuracy).

  python -m train.convnet --config configs/vgg.py \
      --config.dataset=image_folder:../shared/data/cifar10 --workdir runs/vgg

Result, measured on this project's 2-core CPU machine (no GPU was available,
so only the first 1,000 of the 5,000 steps were run, with
`--config.max_steps=1000`): test accuracy 0.531 at step 500 and 0.630 at step
1,000, 82 images/s with the hand-written backward, 480 s wall.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model = default.convnet_model('vgg')
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
