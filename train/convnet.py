"""`python -m train.convnet --config configs/quickstart.py`: trains a CNN."""

from absl import app

from train import cli


def main(argv):
  cli.main(argv, family='convnet')


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
