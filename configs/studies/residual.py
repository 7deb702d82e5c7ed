r"""vugrad's depth experiment: two vs three hidden layers vs three with h1 -> h3.

configs/mnist_mlp.py (vugrad's MNIST protocol: sigmoid, raw pixels, vugrad's
initialization, SGD at 1e-4 on the summed loss, batch 128, batches in order,
20 epochs, 5,000 training images held out for validation) with hidden
layers (256, 256), (256, 256, 256), and (256, 256, 256) with the first hidden
layer's output added to the third's (`model.residual`). The widths are ours;
the protocol's other settings follow configs/mnist_mlp.py, whatever it holds.

  python -m train.study --config configs/studies/residual.py

MNIST needs a tfds download (no network here); on the CIFAR-10 copy:

  python -m train.study --config configs/studies/residual.py \
      --config.dataset=image_folder:../shared/data/cifar10

Result: not measured yet.
"""

from train import study


def get_config():
  three = (256, 256, 256)
  return study.config(
      'mnist_mlp',
      variants=[
          ('two_layers', {'model.hidden_units': (256, 256)}),
          ('three_layers', {'model.hidden_units': three}),
          (
              'three_layers_residual',
              {'model.hidden_units': three, 'model.residual': True},
          ),
      ],
  )
