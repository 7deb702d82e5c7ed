r"""2021 Assignment 1, Q2.2: MLP depth with and without BatchNorm on CIFAR-10.

configs/mlp_2021.py (ReLU, SGD at 0.1, batch 128, seed 42) for 20 epochs
(7,800 steps, evaluated each epoch) with hidden layers (128), (256, 128) and
(512, 256, 128), each without and with BatchNorm after every hidden Linear:
six runs.

  python -m train.study --config configs/studies/batch_norm.py \
      --config.dataset=image_folder:../shared/data/cifar10

Result: not measured yet. A smoke of 2 of the 20 epochs
(`--config.max_steps=780 --config.eval_every=390 --variants=h128,h512-256-128_bn`,
2-core CPU) reached test accuracy 0.437 (h128, 26,700 images/s) and 0.507
(h512-256-128_bn, 7,400 images/s), 40-45 s each, about 25 s of it JPEG
decoding; the whole study should take about 10 minutes there.
"""

from train import study

HIDDEN = ((128,), (256, 128), (512, 256, 128))


def get_config():
  return study.config(
      'mlp_2021',
      overrides={
          'max_steps': study.steps(20, 128),
          'eval_every': 50_000 // 128,
          'checkpoint_every': 10 * (50_000 // 128),
      },
      variants=[
          (
              'h' + '-'.join(map(str, hidden)) + ('_bn' if norm else ''),
              {'model.hidden_units': hidden, 'model.norm': norm},
          )
          for hidden in HIDDEN
          for norm in (None, 'batch')
      ],
  )
