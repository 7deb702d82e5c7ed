"""jaxbp._memory.trim gives what XLA's compiler freed back to the OS."""

import os
import subprocess
import sys

import pytest

from jaxbp import _memory

# Compiles one long program (LLVM's working memory is what trim gives back),
# then reports its RSS (MiB) before and after trim().
CHILD = r"""
import jax, jax.numpy as jnp
from jaxbp import _memory
def rss():
  return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
def long(x):
  for k in range(300):
    x = jnp.tanh(x @ x.T * (k + 1.0) + jnp.sin(x[::-1]))
  return x
jax.jit(long).lower(jnp.ones((32, 32))).compile()
before = rss()
print(_memory.trim(), before, rss())
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or _memory._malloc_trim() is None,
    reason="needs glibc's malloc_trim",
)
def test_trim_returns_what_compiling_freed():
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(
      [sys.executable, "-c", CHILD],
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  ok, before, after = result.stdout.split()
  assert ok == "True"
  assert float(after) < float(before) - 50, (before, after)


def test_trim_is_a_no_op_without_malloc_trim(monkeypatch):
  monkeypatch.setattr(_memory, "_malloc_trim", lambda: None)
  assert _memory.trim() is False
