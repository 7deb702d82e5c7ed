r"""The PyTorch-tutorial CNN, stage 2: Adam vs SGD and dropout, at stage 1's best.

"At the best" is read, not guessed: the runner opens stage 1's results.json
(`study.best_of`, default runs/studies/convnet, i.e. configs/studies/convnet.py
run with its default --workdir), takes the variant with the highest
validation accuracy and shares its learning rate and momentum with every
variant here; results.md names the variant it took. Variants: that SGD
setting as is (dropout 0); Adam at its usual 1e-3; SGD with dropout 0.1 and
0.3 (`model.dropout`: on the input of each fully connected layer, in training
only). The test split stays untouched; for the final test accuracy of the
chosen setting, rerun it with `--config.validation_size=0` in another
--workdir.

  python -m train.study --config configs/studies/convnet.py \
      --config.dataset=image_folder:../shared/data/cifar10
  python -m train.study --config configs/studies/convnet_best.py \
      --config.dataset=image_folder:../shared/data/cifar10

Result (image_folder CIFAR-10 copy, 2-core Xeon, one core, 714 s for the
four; stage 1's best was lr 5e-4, momentum 0.9; validation accuracy, final /
best at epoch): sgd 0.598 / 0.600 (8), adam 0.591 / 0.597 (5),
sgd_dropout0.1 0.617 / 0.617 (10), sgd_dropout0.3 0.573 / 0.573 (10).
"""

from configs.studies import convnet
from train import study


def get_config():
  return study.config(
      'vgg',
      overrides=convnet.STAGE_ONE,
      best_of='runs/studies/convnet',
      variants=[
          ('sgd', {}),
          ('adam', {'optimizer': 'adam', 'learning_rate': 1e-3}),
          ('sgd_dropout0.1', {'model.dropout': 0.1}),
          ('sgd_dropout0.3', {'model.dropout': 0.3}),
      ],
  )
