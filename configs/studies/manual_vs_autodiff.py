r"""Ours: the same run with the hand-written backward rules and with autodiff.

configs/mlp_2021.py (one seed, model and data) trained twice, with
`model.vjp=manual` (jaxbp's custom VJPs) and `model.vjp=autodiff` (JAX
autodiff of the same forward, loss included). The curves overlay; the table
adds the largest absolute difference in test loss at any evaluation and each
run's images/s.

  python -m train.study --config configs/studies/manual_vs_autodiff.py \
      --config.dataset=image_folder:../shared/data/cifar10

Result, measured on this project's 2-core CPU (shared with other jobs), 85 s:
final test accuracy 0.492 (manual, 37,914 images/s) and 0.501 (autodiff,
34,919 images/s); largest test-loss gap 0.036 (float32 rounding amplified by
SGD at lr 0.1; the gradients agree to 1e-8 in float64).
"""

from train import study


def get_config():
  return study.config(
      'mlp_2021',
      reference='manual',
      variants=[
          ('manual', {'model.vjp': 'manual'}),
          ('autodiff', {'model.vjp': 'autodiff'}),
      ],
  )
