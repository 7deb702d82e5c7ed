r"""2021 Assignment 1, Q2.2: MLP depth with and without BatchNorm on CIFAR-10.

configs/mlp_2021.py (ReLU, SGD at 0.1, batch 128, seed 42) for 20 epochs
(7,800 steps, evaluated each epoch) with hidden layers (128), (256, 128) and
(512, 256, 128), each without and with BatchNorm after every hidden Linear:
six runs.

  python -m train.study --config configs/studies/batch_norm.py \
      --config.dataset=image_folder:../shared/data/cifar10

Result, measured on this project's 2-core CPU (shared with other jobs), all
six runs in 572 s: final test accuracy without / with BatchNorm 0.507 / 0.526
(128), 0.488 / 0.532 (256, 128), 0.500 / 0.530 (512, 256, 128); see
docs/results.md for the curves.
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
