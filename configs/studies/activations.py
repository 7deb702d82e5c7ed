r"""One MLP, five activations (2019 Tanh vs ELU; vugrad sigmoid vs ReLU).

configs/mlp_2021.py (one hidden layer of 128 units, SGD at 0.1, batch 128,
10 epochs, seed 42) with sigmoid, tanh, ReLU, LeakyReLU (slope 0.01) and ELU
(alpha 1) hidden units; the same initial weights for all five.

  python -m train.study --config configs/studies/activations.py \
      --config.dataset=image_folder:../shared/data/cifar10

Result, measured on this project's 2-core CPU (shared with other jobs), 184 s:
final test accuracy sigmoid 0.458, tanh 0.433, relu 0.492, leaky_relu 0.499,
elu 0.493.
"""

from train import study

ACTIVATIONS = ('sigmoid', 'tanh', 'relu', 'leaky_relu', 'elu')


def get_config():
  return study.config(
      'mlp_2021',
      variants=[(a, {'model.activation': a}) for a in ACTIVATIONS],
  )
