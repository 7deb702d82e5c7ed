"""Shared benchmark helpers: median wall time, residual bytes, machine, docs."""

import os
import pathlib
import platform

import jax

from jaxbp.gradcheck import timing

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def median_time(fn, *args, repeats: int = 20, warmup: int = 2) -> float:
  """Returns the median wall time of `fn(*args)` in seconds."""
  return median_times([(fn, args)], repeats, warmup)[0]


# One implementation, shared with `python -m jaxbp.gradcheck`'s timing column.
median_times = timing.median_times


def residual_bytes(fn, *args) -> int:
  """Returns the bytes `jax.vjp(fn, *args)` keeps alive for the backward pass.

  The residuals are the array leaves of the returned VJP function, taken under
  `jax.jit` as a train step would see them; the same measure is used for the
  hand-written rule and for autodiff.
  """
  vjp_fn = jax.jit(lambda *a: jax.vjp(fn, *a)[1])(*args)
  return sum(leaf.nbytes for leaf in jax.tree.leaves(vjp_fn))


def _cpu_model() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def machine() -> str:
  """Returns a one-paragraph description of the machine the numbers came from."""
  device = jax.devices()[0]
  return (
      f"CPU {_cpu_model()}, {os.cpu_count()} cores; JAX {jax.__version__}"
      f" on backend `{jax.default_backend()}`, {jax.device_count()} device(s)"
      f" of kind `{device.device_kind}`; Python {platform.python_version()}."
  )


def write_section(name: str, markdown: str, path: pathlib.Path = DOC) -> None:
  """Replaces the block between `<!-- name:begin -->` and `<!-- name:end -->`.

  Creates the file, or appends the block, when absent; other sections are
  left untouched so each benchmark script owns only its own.
  """
  begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
  block = f"{begin}\n{markdown.strip()}\n{end}"
  text = path.read_text() if path.exists() else "# Benchmarks\n"
  if begin in text and end in text:
    head, rest = text.split(begin, 1)
    text = head + block + rest.split(end, 1)[1]
  else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
