r"""The seeds' NumPy-MLP protocol on CIFAR-10.

One hidden layer of 100 LeakyReLU(0.02) units, plain SGD at 2e-3, batch 200,
1500 steps, evaluation every 100, mean-image subtraction, seed 42 (seeds:
0.46-0.49 test accuracy). The NumPy MLP's 2e-3 steps along the gradient of the
loss summed over the batch; ours is the batch mean, so the same steps take a
learning rate 200 times larger. The default data set is tfds' `cifar10`;
offline, use the JPEG image-folder copy:

  python -m train.mlp --config configs/mlp.py \
      --config.dataset=image_folder:../shared/data/cifar10 --workdir runs/mlp

Result, measured on this project's 2-core CPU machine, idle: test accuracy
0.506 at step 1500 (0.445 at step 200, 0.47-0.51 from step 800 on), train
accuracy 0.54; 20 s for the whole command, JPEG decoding included.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model = default.mlp_model(
      hidden_units=(100,), activation='leaky_relu', negative_slope=0.02
  )
  config.dataset = 'cifar10'
  config.normalization = 'mean_image'
  config.optimizer = 'sgd'
  config.learning_rate = 2e-3 * 200  # 2e-3 on the batch-summed loss
  config.batch_size = 200
  config.max_steps = 1500
  config.eval_every = 100
  config.checkpoint_every = 500
  config.seed = 42
  return config
