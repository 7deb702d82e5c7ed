r"""The mini-autodiff (vugrad) assignment's MNIST MLP.

One sigmoid hidden layer four times the input width (4 x 784 = 3136 units),
plain SGD, batch 128, 20 epochs of the 55,000 training images with 5,000 held
out for validation, pixels scaled to [0, 1]. vugrad's learning rate of 1e-4
acts on a loss summed over the batch; ours is the batch mean, so it is 128
times larger. Seeds: 0.969 validation accuracy.

  python -m train.mlp --config configs/mnist_mlp.py --workdir runs/mnist_mlp

Variants: `--config.model.activation=relu`; a residual connection from hidden
layer 1 to hidden layer 3 with
`--config.model.hidden_units='(256, 256, 256)' --config.model.residual=True`.

Result: not measured here: MNIST comes from tfds, which needs a download, and
these machines have no network (the run stops within seconds saying so). With
a prepared tfds copy, add `--config.data_dir=DIR`.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model = default.mlp_model(hidden_units=(3136,), activation='sigmoid')
  config.dataset = 'mnist'
  config.normalization = 'unit'
  config.validation_size = 5000
  config.optimizer = 'sgd'
  config.learning_rate = 1e-4 * 128
  config.batch_size = 128
  config.max_steps = 8600  # 20 epochs of 55,000 images
  config.eval_every = 430
  config.checkpoint_every = 1720
  config.seed = 42
  return config
