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

Result: not measured yet. A smoke of 3,000 steps of lr0.001_m0.9 on the
2-core CPU ran at 2,100 images/s (0.375 validation accuracy after 12,000
images); at that speed a 10-epoch run takes about 4 minutes, the study
about 25.
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
