"""Shared pytest fixtures, and float32 checks made exact on accelerators."""

import contextlib

import jax
import pytest

from jaxbp import _compat

# GPUs (TF32) and TPUs (bf16 passes) run float32 matmuls and convolutions at
# reduced precision by default; the float32 comparisons here assume full.
if jax.default_backend() != "cpu":
  jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture
def x64():
  """Enables float64 for one test; the sharp gradient checks need it.

  On a backend without float64 (TPU) the test runs on the CPU device.
  """
  device = _compat.float64_device()
  on_cpu = jax.default_device(device) if device else contextlib.nullcontext()
  with _compat.enable_x64(True), on_cpu:
    yield
