"""Round-robin wall-clock timing of jitted calls: manual vs autodiff ratios."""

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxbp.gradcheck import check


def fwd_bwd_seconds(
    fns: Sequence[Callable], *args: Any, repeats: int = 20
) -> list[float]:
  """Returns the median time of one jitted forward + backward of each fn.

  The functions are called in turn, round after round, so that a change in
  machine load hits all of them alike.
  """

  def stepper(f):
    def step(*a):
      g, floats, _ = check.float_args(f, a)
      y, vjp_fn = jax.vjp(g, *floats)
      return y, vjp_fn(jax.tree.map(jnp.ones_like, y))  # y: no dead code.

    return jax.jit(step)

  steps = [stepper(f) for f in fns]
  return median_times([(step, args) for step in steps], repeats, warmup=1)


def median_times(calls, repeats: int = 20, warmup: int = 2) -> list[float]:
  """Returns the median wall time in seconds of each `(fn, args)` in `calls`.

  The calls run in turn, round after round, so a change in machine load hits
  all of them alike and their ratio stays meaningful on a busy machine. The
  first `warmup` rounds (compilation included) are discarded; every call is
  synchronized with `block_until_ready` so asynchronous dispatch does not hide
  the work.
  """
  times = [[] for _ in calls]
  for round_ in range(warmup + repeats):
    for (fn, args), ts in zip(calls, times, strict=True):
      start = time.perf_counter()
      jax.block_until_ready(fn(*args))
      if round_ >= warmup:
        ts.append(time.perf_counter() - start)
  return [statistics.median(ts) for ts in times]
