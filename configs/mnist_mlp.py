r"""The mini-autodiff (vugrad) assignment's MNIST MLP, as vugrad trains it.

vugrad's `experiments/train_mlp.py -D mnist -l 0.0001`: one sigmoid hidden
layer four times the input width (4 x 784 = 3136 units), raw pixels 0..255
(`normalization='raw'`), vugrad's `Linear` initialization (weights N(0, 1)
times 2 / (in + out), zero biases: `model.kernel_init='vugrad'`), plain SGD at
lr 1e-4 on the cross-entropy summed over the batch (`loss_reduction='sum'`),
batch 128, 20 epochs, batches taken in order (`batch_order='in_order'`), 55,000
training images and 5,000 held out for validation. Seeds: 0.969 validation
accuracy.

Where ours differs: the 5,000 validation images are drawn with `seed` (vugrad
holds out the last 5,000 of the file), and each epoch's last partial batch (88
images) is dropped, so an epoch is 429 steps and 20 epochs are 8,580.

  python -m train.mlp --config configs/mnist_mlp.py --workdir runs/mnist_mlp

Variants (vugrad's `train_mlp_relu.py`, `train_mlp_3layers.py` and the
residual exercise):

  --config.model.activation=relu
  --config.model.hidden_units='(3136, 3136)'   # three layers of weights
  --config.model.hidden_units='(3136, 3136, 3136)' --config.model.residual=True

(the last adds hidden layer 1's output to hidden layer 3's; configs/studies/
residual.py runs two vs three layers vs three with the residual).

Result: not measured: no MNIST copy here (tfds needs a download, and these
machines have no network; the run stops within seconds saying so). With a
prepared tfds copy, add `--config.data_dir=DIR`.
"""

from configs import default

TRAIN_SIZE, BATCH = 55_000, 128
EPOCH = TRAIN_SIZE // BATCH  # 429 full batches


def get_config():
  config = default.get_config()
  config.model = default.mlp_model(
      hidden_units=(3136,), activation='sigmoid', kernel_init='vugrad'
  )
  config.dataset = 'mnist'
  config.normalization = 'raw'
  config.validation_size = 5000
  config.batch_order = 'in_order'
  config.optimizer = 'sgd'
  config.loss_reduction = 'sum'
  config.learning_rate = 1e-4
  config.batch_size = BATCH
  config.max_steps = 20 * EPOCH
  config.eval_every = EPOCH  # once per epoch, as vugrad prints
  config.checkpoint_every = 4 * EPOCH
  config.seed = 42
  return config
