r"""Our recipe for the Table 1 VGG on CIFAR-10, aiming at >= 0.90 test accuracy.

Same network as configs/vgg.py; random crops (4-pixel padding) and flips,
per-channel standardization, batch 256, SGD with Nesterov momentum 0.9 and a
warmup-cosine schedule peaking at 0.1, L2 weight decay 5e-4 on kernels,
label smoothing 0.1, bf16 compute (fp32 params, norm statistics and loss),
30 epochs (5,850 steps).

  python -m train.convnet --config configs/vgg_fast.py \
      --config.dataset=image_folder:../shared/data/cifar10 --workdir runs/vgg_fast

Result: not measured here. This project's machine has 2 shared CPU cores and
no GPU, so no VGG run was made on CIFAR-10; the config was only checked to run
(a few steps on `--config.dataset=digits`).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model = default.convnet_model('vgg', dtype='bfloat16')
  config.dataset = 'cifar10'
  config.normalization = 'per_channel'
  config.random_crop_padding = 4
  config.random_flip = True
  config.optimizer = 'momentum'
  config.momentum = 0.9
  config.nesterov = True
  config.learning_rate = 0.1
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 390
  config.weight_decay = 5e-4
  config.label_smoothing = 0.1
  config.batch_size = 256
  config.max_steps = 5850
  config.eval_every = 585
  config.checkpoint_every = 585
  config.seed = 42
  return config
