"""Training: input pipeline, train loop, CLIs (train.mlp, train.convnet)."""
