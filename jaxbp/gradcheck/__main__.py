"""Prints the gradient-check table: python -m jaxbp.gradcheck [--ops=relu,...]."""

from collections.abc import Sequence

import jax.numpy as jnp
from absl import app, flags, logging

from jaxbp.gradcheck import check, registry

OPS = flags.DEFINE_list("ops", [], "Only these ops (default: all registered).")
REPEATS = flags.DEFINE_integer("repeats", 20, "Timing repeats per op.")


def _shapes(args, static) -> str:
  parts = ["x".join(map(str, jnp.shape(a))) or "()" for a in args]
  parts += [f"{k}={v}" for k, v in static.items()]
  return " ".join(parts)


def main(argv: Sequence[str]) -> int:
  """Checks every registered op; prints one table row per op."""
  del argv
  # JAX logs at INFO that it found no TPU; the table is the output.
  logging.set_verbosity(logging.WARNING)
  header = (
      "op",
      "shapes",
      "rel err vs autodiff",
      "rel err vs finite diff",
      "time manual/autodiff",
  )
  print("| " + " | ".join(header) + " |")
  print("|" + "---|" * len(header))
  failures, checked, failed = [], 0, 0
  for case in registry.CASES:
    if OPS.value and case.name.split(" ")[0] not in OPS.value:
      continue
    args = case.build()
    result = check.check_vjp(
        case.op, *args, static=case.static, raise_on_error=False
    )
    args32 = [
        jnp.asarray(a, jnp.float32) if check.is_float(a) else a for a in args
    ]
    manual, plain = check.fwd_bwd_seconds(
        [case.fn, case.plain], *args32, repeats=REPEATS.value
    )
    ratio = manual / plain
    status = "" if result.ok else " FAIL"
    print(
        f"| {case.name}{status} | {_shapes(args, case.static)} |"
        f" {result.autodiff_rel:.1e} | {result.fd_rel:.1e} | {ratio:.2f}x |",
        flush=True,
    )
    failures += result.failures
    checked, failed = checked + 1, failed + (not result.ok)
  for line in failures:
    print(line)
  if failed:
    print(f"{failed} of {checked} checks failed.")
    return 1
  print(f"All {checked} checks within tolerance.")
  return 0


if __name__ == "__main__":
  app.run(main)
