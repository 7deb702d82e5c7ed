"""Prints the gradient-check table: python -m jaxbp.gradcheck [--ops=relu,...]."""

import sys
from collections.abc import Sequence

import jax.numpy as jnp
from absl import app, flags, logging

from jaxbp.gradcheck import check, results, table, timing

OPS = flags.DEFINE_list(
    "ops", [], "Only these ops or table rows (default: every row)."
)
REPEATS = flags.DEFINE_integer("repeats", 20, "Timing repeats per op.")


def _shapes(args, static) -> str:
  parts = ["x".join(map(str, jnp.shape(a))) or "()" for a in args]
  parts += [f"{k}={v}" for k, v in static.items()]
  return " ".join(parts)


def _selected(names: Sequence[str]) -> list[table.Case] | None:
  """The rows named (by op or row name); None after printing the unknown."""
  if not names:
    return list(table.CASES)
  known = {c.op.__name__ for c in table.CASES} | {c.name for c in table.CASES}
  unknown = [n for n in names if n not in known]
  if unknown:
    ops = sorted({c.op.__name__ for c in table.CASES})
    print(
        f"gradcheck: unknown op {', '.join(map(repr, unknown))}; known ops:"
        f" {', '.join(ops)} (or a row name of jaxbp/gradcheck/table.py).",
        file=sys.stderr,
    )
    return None
  return [c for c in table.CASES if {c.op.__name__, c.name} & set(names)]


def _row(case: table.Case) -> tuple[str, results.Result]:
  """Checks one row in float64; times it in float32; returns the table line."""
  args = case.build(shapes=case.check)
  result = check.check_vjp(
      case.op,
      *args,
      static=case.static,
      reference=case.reference,
      raise_on_error=False,
  )
  args32 = [
      jnp.asarray(a, jnp.float32) if check.is_float(a) else a for a in args
  ]
  manual, plain = timing.fwd_bwd_seconds(
      [case.fn, case.plain], *args32, repeats=REPEATS.value
  )
  status = "" if result.ok else " FAIL"
  line = (
      f"| {case.name}{status} | {_shapes(args, case.static)} |"
      f" {result.autodiff_rel:.1e} | {result.fd_rel:.1e} |"
      f" {manual / plain:.2f}x |"
  )
  return line, result


def main(argv: Sequence[str]) -> int:
  """Checks every selected row; prints one table line per row."""
  del argv
  # JAX logs at INFO that it found no TPU; the table is the output.
  logging.set_verbosity(logging.WARNING)
  cases = _selected(OPS.value)
  if cases is None:
    return 2
  header = (
      "op",
      "shapes",
      "rel err vs autodiff",
      "rel err vs finite diff",
      "time manual/autodiff",
  )
  print("| " + " | ".join(header) + " |")
  print("|" + "---|" * len(header))
  failures, failed = [], 0
  for case in cases:
    line, result = _row(case)
    print(line, flush=True)
    failures += result.failures
    failed += not result.ok
  for line in failures:
    print(line)
  if failed:
    print(f"{failed} of {len(cases)} checks failed.")
    return 1
  print(f"All {len(cases)} checks within tolerance.")
  return 0


if __name__ == "__main__":
  app.run(main)
