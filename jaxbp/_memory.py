"""Gives the heap memory XLA's compiler freed back to the operating system.

Compiling a program (and every eager op's small one) allocates hundreds of
MiB that glibc's malloc keeps in its arenas after they are freed, so they
stay in the process's RSS while the compiled program then allocates its own
buffers beside them. ``malloc_trim(0)`` returns the free pages: measured on
the VGG Adam train step at batch 128, RSS after compiling 639 -> 451 MiB,
peak RSS over the first steps 845 -> 661 MiB (``benchmarks/peers.py``). The
train loop calls :func:`trim` once, after its first (compiling) step.

Then it calls :func:`keep_freed_pages`. XLA:CPU allocates a program's
temporary buffers at every run and frees them after (the VGG Adam step at
batch 32: 54 MiB). glibc serves an allocation that large with a fresh
``mmap`` and unmaps it on free, so every step page-faults its whole temporary
memory in again: about 14,000 minor faults and 0.03-0.05 s of system time a
step at batch 32 on a 2-core AMD EPYC. With ``mmap`` off and the trim
threshold at its maximum, the freed buffer stays in the heap and the next
step reuses its pages: no faults after the first steps. Buffers over 64 MiB
allocated on a thread with its own arena (batch 128: 153 MiB, run on XLA's
dispatch thread) are still mapped afresh; glibc's per-thread heaps cannot
hold them.
"""

import ctypes
import ctypes.util
import functools
import sys

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_INT_MAX = 2**31 - 1


@functools.cache
def _glibc(name):
  """glibc's function `name`, or None (not Linux, or a libc without it)."""
  if not sys.platform.startswith("linux"):
    return None
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return getattr(libc, name)
  except (OSError, AttributeError):  # Not glibc (musl has no malloc_trim).
    return None


def _malloc_trim():
  return _glibc("malloc_trim")


def trim() -> bool:
  """Returns freed heap pages to the OS; False where libc cannot (not glibc)."""
  fn = _malloc_trim()
  if fn is None:
    return False
  fn(0)
  return True


def keep_freed_pages() -> bool:
  """Keeps large freed buffers in the heap for reuse (module doc): no more
  ``mmap`` for them, no trimming on free; :func:`trim` still gives free pages
  back when asked. Process-wide; False where libc cannot (not glibc)."""
  fn = _glibc("mallopt")
  if fn is None:
    return False
  return bool(fn(_M_MMAP_MAX, 0)) and bool(fn(_M_TRIM_THRESHOLD, _INT_MAX))
