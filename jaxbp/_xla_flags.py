"""XLA:CPU flags jaxbp sets before the backend starts, and whether they took.

XLA reads ``XLA_FLAGS`` once, when its CPU client is created (the first
``jax.devices()``, jit or array). ``import jaxbp`` adds the flags below to
``XLA_FLAGS`` if that has not happened yet, leaving any flag the user set
there as it is; ``JAXBP_XLA_FLAGS=0`` keeps ``XLA_FLAGS`` untouched.
Formulation choices made per shape (``ops._conv_impl.choose_impl``) ask
:func:`ynn_dots` which backend they are tuned for.

``--xla_cpu_experimental_ynn_fusion_type=dot`` keeps YNNPACK for XLA:CPU's
dots (and what XLA fuses into them) and leaves lone convolutions to Eigen:
jaxlib 0.10.2's default also hands every convolution, elementwise and reduce
op to YNNPACK (checked in the compiled HLO; a lone 3x3 256->256 forward at
8x8, batch 32, on a 2-core AMD EPYC: 18.8 ms by default, 14.1 under the flag;
a 2048x1024 @ 1024x512 dot 11.8 ms either way). Measured on a 2-core AVX-512
Xeon, jaxlib 0.10.2, batch 128, one core, ms (default -> flag): XLA's
convolution as dw 16x16 64->128 173 -> 46, 8x8 256->256 192 -> 74, 4x4
512->512 91 -> 71; the forward 8x8 256->256 81 -> 61, 4x4 512->512 86 -> 64;
patches + matmul formulations get slightly slower (dw 16x16 142 -> 165). With
choose_impl re-tuned under it, the VGG Adam train step runs faster (figures in
docs/benchmarks.md, ``python -m benchmarks.peers``). Its results equal the
default's to float32 rounding (tests/test_xla_flags.py); float64 checks run
under it in the whole suite. jaxlib 0.7.2 does not know the flag (XLA would
abort on it), so it is set only from jaxlib 0.10, the first release it was
verified on.

``--xla_cpu_enable_concurrency_optimized_scheduler=false`` schedules the
thunks of a program for memory, not for running independent ones at once:
the VGG Adam train step at batch 128 needs 147 MiB of temporary buffers
instead of 282 (``compiled.memory_analysis()``) and its peak RSS falls from
about 990 to 845 MiB. Seconds a step, two runs each, with vs without: batch
128 0.52-0.55 vs 0.57-0.58; batch 32 0.158-0.163 vs 0.154 (up to 6% slower
there). Only the order of the thunks changes: the results are exactly the
default's (tests/test_xla_flags.py).

``--xla_cpu_copy_insertion_use_region_analysis=true`` switches XLA's copy
insertion to its region analysis; with it, the VGG Adam train step no longer
begins by copying every donated parameter (9.2M floats, 37 MB in 20 copies),
and its temporary buffers are 57.4 MB at batch 32 instead of 62.5 (163.0
instead of 163.8 at batch 128). Measured in one process on a 2-core AMD EPYC
VM, jaxlib 0.10.2, the two compilations' steps alternating, median step time
with / without: 0.94-1.01 over four runs at batch 32, 0.98 in one run at
batch 128; the same program against itself gave 0.985 (batch 32) and 1.02
(batch 128), so no speed change is shown beyond that machine's noise; it is
kept for the copy it saves. Only copies are removed: the losses and
parameters are exactly the default's (tests/test_xla_flags.py).

Not set: XLA:CPU's multi-output fusion
(``--xla_backend_extra_options=xla_cpu_use_multi_output_fusion``), which
could fuse each Adam update (new moments and parameter) into one pass. It
does (76 multi-output fusions in the VGG Adam step, same losses), but the
step at batch 32 ran slower, 0.331 vs 0.266 s, with 87 instead of 54 MiB
of temporary buffers (2-core AMD EPYC Zen 3, jaxlib 0.10.2).
"""

import functools
import os
import warnings

YNN = "--xla_cpu_experimental_ynn_fusion_type"
SCHEDULER = "--xla_cpu_enable_concurrency_optimized_scheduler"
COPIES = "--xla_cpu_copy_insertion_use_region_analysis"
# (flag, value, first jaxlib verified)
DEFAULTS = (
    (YNN, "dot", (0, 10)),
    (SCHEDULER, "false", (0, 10)),
    (COPIES, "true", (0, 10)),
)
OPT_OUT = "JAXBP_XLA_FLAGS"


def _jaxlib_version() -> tuple[int, ...]:
  from importlib import metadata

  try:
    text = metadata.version("jaxlib")
  except metadata.PackageNotFoundError:
    return ()
  return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


def _backend_started() -> bool:
  import sys

  bridge = sys.modules.get("jax._src.xla_bridge")
  return bool(bridge is not None and bridge.backends_are_initialized())


def apply(env=os.environ) -> list[str]:
  """Adds the default flags to ``env['XLA_FLAGS']``; returns those added.

  Adds nothing when ``JAXBP_XLA_FLAGS`` is ``0``, or for a flag the user
  already gave (any value). Once the backend started, XLA has read its flags
  and none can be added: where the CPU is JAX's default backend, that warns
  (naming the flags missed and the way out), since jaxbp then runs at XLA's
  defaults (the VGG Adam step at batch 32: 338-388 instead of 259-270 ms on
  a 2-core AMD EPYC).
  """
  if env.get(OPT_OUT, "1") == "0":
    return []
  given = env.get("XLA_FLAGS", "")
  version = _jaxlib_version()
  missing = [
      f"{flag}={value}"
      for flag, value, since in DEFAULTS
      if version >= since and f"{flag}=" not in given
  ]
  if missing and _backend_started():
    if _cpu_is_default():
      warnings.warn(
          "jaxbp was imported after JAX started its CPU backend, so XLA runs"
          f" without jaxbp's flags ({' '.join(missing)}) and convolutions"
          " are slower: import jaxbp before the first JAX array, jit or"
          " jax.devices(), or set JAXBP_XLA_FLAGS=0 to keep XLA's defaults"
          " without this warning.",
          stacklevel=2,
      )
    return []
  if missing:
    env["XLA_FLAGS"] = " ".join([given, *missing]).strip()
  return missing


def _cpu_is_default() -> bool:
  import jax

  return jax.default_backend() == "cpu"


@functools.cache
def ynn_dots() -> bool:
  """Whether XLA:CPU runs its dots through YNNPACK, as the compiler says.

  Compiles one small matmul for the CPU device (once per process, about
  0.07 s) and looks for a YNNPACK fusion in the optimized HLO, so the answer
  holds whatever decided it: jaxbp's default flag, the user's ``XLA_FLAGS``
  (``...ynn_fusion_type=`` or ``=individual_convolution`` leave dots to
  Eigen) or jaxlib's own default, which in 0.10.2 sends dots (and lone
  convolutions) to YNNPACK when ``JAXBP_XLA_FLAGS=0``. Under that default the
  YNNPACK tuning of ``choose_impl`` is no slower: the VGG Adam step, in-process
  A/B on a 2-core AMD EPYC, YNNPACK vs other tuning, 0.342 vs 0.356 s at
  batch 32 and 1.24 s either way at batch 128. False without a CPU backend.
  """
  import jax
  import jax.numpy as jnp

  try:
    cpu = jax.devices("cpu")[0]
  except RuntimeError:
    return False
  spec = jax.ShapeDtypeStruct(
      (64, 64), jnp.float32, sharding=jax.sharding.SingleDeviceSharding(cpu)
  )
  compiled = jax.jit(jnp.matmul).lower(spec, spec).compile()
  return '"__ynn_fusion"' in compiled.as_text()


apply()
