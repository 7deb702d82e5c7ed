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


# Runs a program whose temporary buffers (about 48 MiB) glibc would map
# afresh at every run, and counts the minor page faults of three runs before
# and after keep_freed_pages(). Dispatch is synchronous, so the buffers are
# allocated on this thread (glibc's main arena).
REUSE_CHILD = r"""
import resource
import jax, jax.numpy as jnp
jax.config.update("jax_cpu_enable_async_dispatch", False)
from jaxbp import _memory
f = jax.jit(lambda x: jnp.sum(jnp.sin(x) @ jnp.cos(x) + jnp.tanh(x)))
x = jnp.ones((2048, 2048))
def faults():
  for _ in range(2):
    f(x).block_until_ready()
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for _ in range(3):
    f(x).block_until_ready()
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
default = faults()
ok = _memory.keep_freed_pages()
print(ok, default, faults())
"""


@pytest.mark.skipif(
    _memory._glibc("mallopt") is None, reason="needs glibc's mallopt"
)
def test_keep_freed_pages_stops_refaulting_temporary_buffers():
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(
      [sys.executable, "-c", REUSE_CHILD],
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  ok, default, kept = result.stdout.split()
  assert ok == "True"
  # 3 runs of 32+ MiB of temporaries: over 20,000 4 KiB pages by default.
  assert int(default) > 20_000 and int(kept) < int(default) // 4, (
      default,
      kept,
  )


def test_keep_freed_pages_is_a_no_op_without_mallopt(monkeypatch):
  monkeypatch.setattr(_memory, "_glibc", lambda name: None)
  assert _memory.keep_freed_pages() is False
