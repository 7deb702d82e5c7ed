r"""The PyTorch-tutorial CNN, stage 1: SGD learning rate x momentum, 10 epochs.

`small_convnet` (conv5-6, pool, conv5-16, pool, fc 120, 84, 10) trained as
the PyTorch 60-minute blitz trains it: SGD with momentum, batch 4, here for 10
epochs, with learning rate in {5e-4, 1e-3, 1e-2} x momentum in {0.9, 0.95}
(six runs). 5,000 training images are held out and the variants are compared
on them (the "test" columns are validation accuracy), so the choice of the
best leaves the test split untouched. Per-channel standardization (the
tutorial maps pixels to [-1, 1]). 10 epochs of 45,000 images at batch 4 are
112,500 steps per run.

  python -m train.study --config configs/studies/convnet.py \
      --config.dataset=image_folder:../shared/data/cifar10

Stage 2 (Adam vs SGD, dropout) starts from the best of these:
configs/studies/convnet_best.py.

Result (image_folder CIFAR-10 copy, 2-core Xeon, one core, 977 s for the six;
validation accuracy, final / best at epoch): lr5e-4_m0.9 0.598 / 0.600 (8),
lr5e-4_m0.95 0.579 / 0.587 (6), lr1e-3_m0.9 0.563 / 0.583 (5), lr1e-3_m0.95
0.533 / 0.548 (5), lr1e-2 (both momenta) diverges to chance (0.105, 0.101).
The tutorial reports 54 % test accuracy after its 2 epochs at lr 1e-3, m 0.9.
"""

from train import study

TRAIN_SIZE = 45_000  # CIFAR-10's 50,000 minus the 5,000 held out
BATCH = 4
STAGE_ONE = {
    'model.name': 'small_convnet',
    'optimizer': 'momentum',
    'batch_size': BATCH,
    'validation_size': 5000,
    'max_steps': study.steps(10, BATCH, TRAIN_SIZE),
    'eval_every': TRAIN_SIZE // BATCH,
    'checkpoint_every': TRAIN_SIZE // BATCH,
    'log_every': 500,
}


def get_config():
  return study.config(
      'vgg',
      overrides=STAGE_ONE,
      variants=[
          (f'lr{lr:g}_m{m:g}', {'learning_rate': lr, 'momentum': m})
          for lr in (5e-4, 1e-3, 1e-2)
          for m in (0.9, 0.95)
      ],
  )
