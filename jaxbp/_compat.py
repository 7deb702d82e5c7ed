"""Shims for APIs missing in the oldest supported stack (jax 0.7.2, flax 0.11.2).

Each name is the newest API where it exists and its older spelling otherwise,
so the rest of jaxbp (and its tests) is written once against these names.
"""

import jax
import jax.experimental
from flax import nnx

# jax.enable_x64 is new in jax 0.8; jax 0.7.2 has jax.experimental.enable_x64.
if hasattr(jax, "enable_x64"):
  enable_x64 = jax.enable_x64
else:
  enable_x64 = jax.experimental.enable_x64

# nnx.List is new in flax 0.12, where lists became static by default; in flax
# 0.11 a plain list of modules is already a traversed graph node.
List = getattr(nnx, "List", list)


def iter_modules(module):
  """Yields ``(path, submodule)`` for ``module`` and everything inside it.

  ``nnx.iter_modules`` in flax >= 0.12 (where the method is deprecated),
  ``Module.iter_modules`` before.
  """
  if hasattr(nnx, "iter_modules"):
    return nnx.iter_modules(module)
  return module.iter_modules()


def has_float64(backend: str | None = None) -> bool:
  """Whether ``backend`` (default: the default backend) computes in float64.

  TPUs do not; JAX's CPU backend, always present, does.
  """
  return (backend or jax.default_backend()) != "tpu"


def float64_device(backend: str | None = None):
  """The device float64 work should run on: None (the default device) where
  the backend has float64, else the first CPU device."""
  return None if has_float64(backend) else jax.devices("cpu")[0]
