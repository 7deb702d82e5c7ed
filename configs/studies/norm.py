r"""No normalization vs BatchNorm vs LayerNorm in an MLP (2020 LayerNorm exercise).

configs/mlp_2021.py (ReLU, SGD at 0.1, batch 128, 10 epochs, seed 42) with
three hidden layers (512, 256, 128), each hidden Linear followed by nothing,
BatchNorm or LayerNorm.

  python -m train.study --config configs/studies/norm.py \
      --config.dataset=image_folder:../shared/data/cifar10

Result: not measured yet.
"""

from train import study


def get_config():
  return study.config(
      'mlp_2021',
      overrides={'model.hidden_units': (512, 256, 128)},
      variants=[
          ('none', {'model.norm': None}),
          ('batch', {'model.norm': 'batch'}),
          ('layer', {'model.norm': 'layer'}),
      ],
  )
