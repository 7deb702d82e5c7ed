r"""The seeds' 2021 NumPy MLP on CIFAR-10 (UvA DL 2021, Assignment 1).

One hidden layer of 128 ReLU units, plain SGD at 0.1 on the batch-mean
cross-entropy, batch 128, 10 epochs of the 50,000 training images (3,900
steps, evaluated once per epoch: every 390 steps), per-channel standardization,
seed 42 (seeds: 0.47-0.48 test accuracy). The seeds' `LinearModule` asks for
"Kaiming initialization" and zero biases: `model.kernel_init='kaiming'`, He
normal weights N(0, 2 / fan_in) in every layer (the template hints that the
first layer, which sees no ReLU, may use N(0, 1 / fan_in); some seeds do).
The default data set is tfds' `cifar10`; offline, use the JPEG image-folder
copy:

  python -m train.mlp --config configs/mlp_2021.py \
      --config.dataset=image_folder:../shared/data/cifar10 --workdir runs/mlp_2021

Result, measured on the image-folder copy on this project's 2-core CPU
machine (shared with other jobs): test accuracy 0.492 after the 10 epochs
(best 0.498 after epoch 5, 0.46-0.50 from epoch 2 on), train accuracy 0.58;
30 s for the whole command, JPEG decoding included.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model = default.mlp_model(
      hidden_units=(128,), activation='relu', kernel_init='kaiming'
  )
  config.dataset = 'cifar10'
  config.normalization = 'per_channel'
  config.optimizer = 'sgd'
  config.learning_rate = 0.1
  config.batch_size = 128
  config.max_steps = 10 * (50_000 // 128)  # 10 epochs of 390 full batches
  config.eval_every = 390  # once per epoch
  config.checkpoint_every = 1950
  config.seed = 42
  return config
