"""Shared pytest fixtures."""

import jax
import pytest


@pytest.fixture
def x64():
  """Enables float64 for one test; the sharp gradient checks need it."""
  with jax.enable_x64(True):
    yield
