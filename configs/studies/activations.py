r"""One MLP, five activations (2019 Tanh vs ELU; vugrad sigmoid vs ReLU).

configs/mlp_2021.py (one hidden layer of 128 units, SGD at 0.1, batch 128,
10 epochs, seed 42) with sigmoid, tanh, ReLU, LeakyReLU (slope 0.01) and ELU
(alpha 1) hidden units; the same initial weights for all five.

  python -m train.study --config configs/studies/activations.py \
      --config.dataset=image_folder:../shared/data/cifar10

Result: not measured yet.
"""

from train import study

ACTIVATIONS = ('sigmoid', 'tanh', 'relu', 'leaky_relu', 'elu')


def get_config():
  return study.config(
      'mlp_2021',
      variants=[(a, {'model.activation': a}) for a in ACTIVATIONS],
  )
