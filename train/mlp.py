"""`python -m train.mlp --config configs/mlp.py`: trains a jaxbp MLP."""

from absl import app

from train import build, cli


def main(argv):
  cli.main(argv, build.MLP_MODELS)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
