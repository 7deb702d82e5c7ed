r"""No normalization vs BatchNorm vs LayerNorm in an MLP (2020 LayerNorm exercise).

configs/mlp_2021.py (ReLU, SGD at 0.1, batch 128, 10 epochs, seed 42) with
three hidden layers (512, 256, 128), each hidden Linear followed by nothing,
BatchNorm or LayerNorm.

  python -m train.study --config configs/studies/norm.py \
      --config.dataset=image_folder:../shared/data/cifar10

Result, measured on this project's 2-core CPU (shared with other jobs), 258 s:
final test accuracy none 0.516, batch 0.526, layer 0.517 (best 0.520, 0.529,
0.527).
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
