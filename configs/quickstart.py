r"""Quick start: the Table 1 VGG on scikit-learn's bundled 8x8 digits, offline.

The seeds' VGG (configs/vgg.py's network: conv3x3-BN-ReLU groups 64 | 128 |
256,256 | 512,512 | 512,512, a 3x3/2 max-pool after each, Linear(512, 10)),
here on one-channel 8x8 digits, with the hand-written backward. Adam at 1e-3
with a cosine schedule, batch 32, 300 steps (about 7 epochs of the 1,437
training digits), evaluation every 50 steps on the 360 held-out ones; writes
metrics.jsonl, loss.png and accuracy.png to the workdir.

  python -m train.convnet --config configs/quickstart.py --workdir runs/quickstart

Result, measured on this project's 2-core CPU machine while other jobs shared
it (load average 5): test accuracy 0.986 on the 360 held-out digits at step
300 (0.981 at step 200, best 0.992 at step 250), train accuracy 0.995, 375
images/s; 52 s for the whole command, start-up and compilation included.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model = default.convnet_model('vgg')
  config.dataset = 'digits'
  config.normalization = 'per_channel'
  config.optimizer = 'adam'
  config.learning_rate = 1e-3
  config.schedule = 'cosine'
  config.batch_size = 32
  config.max_steps = 300
  config.eval_every = 50
  config.eval_batch_size = 360
  config.checkpoint_every = 300
  config.seed = 42
  return config
