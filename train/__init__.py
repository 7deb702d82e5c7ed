"""Training: input pipeline, train loop and CLIs (`python -m train.mlp`, `train.convnet`)."""
