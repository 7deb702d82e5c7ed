"""Input validation shared by the ops: fail early, name the shapes, say the fix."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def shape_of(x) -> tuple[int, ...]:
  return tuple(jnp.shape(x))


def dtype_of(x) -> np.dtype:
  return jnp.result_type(x)


def floating(op: str, **arrays) -> None:
  """Raises TypeError unless every array has a floating dtype."""
  for name, x in arrays.items():
    dtype = dtype_of(x)
    if not jnp.issubdtype(dtype, jnp.floating):
      raise TypeError(
          f"{op}: {name} must be a floating array, got dtype {dtype} with"
          f" shape {shape_of(x)}; cast it with .astype(jnp.float32)."
      )


def rank(op: str, name: str, x, *, ndim=None, min_ndim=None) -> None:
  """Raises ValueError unless `x` has exactly `ndim` or at least `min_ndim` axes."""
  shape = shape_of(x)
  if ndim is not None and len(shape) != ndim:
    raise ValueError(f"{op}: {name} must have {ndim} axes, got shape {shape}.")
  if min_ndim is not None and len(shape) < min_ndim:
    raise ValueError(
        f"{op}: {name} must have at least {min_ndim} axes, got shape {shape}."
    )


def shape(op: str, name: str, x, expected: Sequence[int], why: str) -> None:
  """Raises ValueError unless `x.shape == expected`; `why` explains the rule."""
  got = shape_of(x)
  if got != tuple(expected):
    raise ValueError(
        f"{op}: {name} has shape {got}, expected {tuple(expected)} ({why})."
    )


def same_shape(op: str, **arrays) -> None:
  """Raises ValueError unless all arrays have one shape."""
  shapes = {name: shape_of(x) for name, x in arrays.items()}
  if len(set(shapes.values())) > 1:
    listed = ", ".join(f"{name} {s}" for name, s in shapes.items())
    raise ValueError(f"{op}: shapes must match, got {listed}.")


def broadcastable(op: str, **arrays) -> tuple[int, ...]:
  """Returns the broadcast shape, or raises ValueError naming the shapes."""
  shapes = {name: shape_of(x) for name, x in arrays.items()}
  try:
    return tuple(np.broadcast_shapes(*shapes.values()))
  except ValueError:
    listed = ", ".join(f"{name} {s}" for name, s in shapes.items())
    raise ValueError(f"{op}: shapes do not broadcast, got {listed}.") from None


def axis(op: str, x, axis: int) -> int:
  """Returns `axis` as a non-negative index into `x`, or raises ValueError."""
  ndim = len(shape_of(x))
  if not -ndim <= axis < ndim:
    raise ValueError(
        f"{op}: axis {axis} is out of range for x with shape {shape_of(x)}."
    )
  return axis % ndim


def prng_key(op: str, name: str, key) -> None:
  """Raises TypeError unless `key` is a PRNG key (typed or raw uint32[2])."""
  dtype = dtype_of(key)
  typed = jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
  raw = dtype == jnp.uint32 and shape_of(key)[-1:] == (2,)
  if not (typed or raw):
    raise TypeError(
        f"{op}: {name} must be a PRNG key from jax.random.key, got dtype"
        f" {dtype} with shape {shape_of(key)}."
    )
