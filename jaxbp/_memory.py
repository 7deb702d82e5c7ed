"""Gives the heap memory XLA's compiler freed back to the operating system.

Compiling a program (and every eager op's small one) allocates hundreds of
MiB that glibc's malloc keeps in its arenas after they are freed, so they
stay in the process's RSS while the compiled program then allocates its own
buffers beside them. ``malloc_trim(0)`` returns the free pages: measured on
the VGG Adam train step at batch 128, RSS after compiling 639 -> 451 MiB,
peak RSS over the first steps 845 -> 661 MiB (``benchmarks/peers.py``). The
train loop calls :func:`trim` once, after its first (compiling) step.

Measured and not kept: keeping large freed buffers in the heap
(``mallopt``: no ``mmap``, no trimming on free). XLA:CPU allocates a
program's temporary buffers at every run (the VGG Adam step at batch 32:
54 MiB) and glibc maps allocations that large afresh and unmaps them on free,
so every step page-faults them in again (about 14,000 minor faults and
0.03-0.05 s of system time a step on a 2-core AMD EPYC). With the setting
the faults stop and the step took 0.935x the time (7 interleaved process
pairs), but the steady RSS at batch 32 rose from 491 to 548 MiB: after a
few steps without faults one step faulted the whole 54 MiB in again, and
they stayed (20 steps). XLA runs the step on whichever of its dispatch
threads is free, and each thread's malloc arena most likely keeps its own
copy. That put the peak RSS at batch 32 over PyTorch's (one run: 604
against 573 MiB), and at batch 128 (153 MiB of temporaries, more than
glibc's per-thread heaps hold) the faults stayed.
"""

import ctypes
import ctypes.util
import functools
import sys


@functools.cache
def _malloc_trim():
  if not sys.platform.startswith("linux"):
    return None
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return libc.malloc_trim
  except (OSError, AttributeError):  # Not glibc (musl has no malloc_trim).
    return None


def trim() -> bool:
  """Returns freed heap pages to the OS; False where libc cannot (not glibc)."""
  fn = _malloc_trim()
  if fn is None:
    return False
  fn(0)
  return True
