"""`python -m train.mlp --config configs/quickstart_mlp.py`: trains an MLP."""

from absl import app

from train import cli


def main(argv):
  cli.main(argv, family='mlp')


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
