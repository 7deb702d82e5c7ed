"""Tests of train/: input pipeline, loop and CLIs."""
