"""Times each op's hand-written backward against autodiff of its plain forward.

Run: python -m benchmarks.ops [--quick]. Writes the `ops` section of
docs/benchmarks.md. Both sides are jitted and measured in the same run. The
rows are the `bench` shapes of the op table, jaxbp/gradcheck/table.py.
"""

import re
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks import _timing
from jaxbp import gradcheck
from jaxbp.gradcheck import table

QUICK = flags.DEFINE_bool(
    "quick", False, "Small sizes, 3 repeats: a smoke run."
)
REPEATS = flags.DEFINE_integer("repeats", 30, "Timed calls per measurement.")

# Ops whose backward alone is also timed (goal: <= 0.8x autodiff's).
BWD_GOAL = {"batch_norm": 0.8, "layer_norm": 0.8}


def _shrink(shape):
  """--quick: at most 16 per axis (the same cap keeps shapes compatible)."""
  return tuple(min(n, 16) for n in shape)


def _rows():
  """(case, shapes) for every benchmark row of the op table."""
  return [(case, shapes) for case in table.CASES for shapes in case.bench]


def _args(case, shapes, quick):
  """The row's arguments, float ones in float32 on the default device."""
  if quick:
    shapes = tuple(map(_shrink, shapes))
  return case.build(dtype=jnp.float32, shapes=shapes)


def _programs(fn, args, dy):
  """Returns the jitted fwd+bwd call, the bwd-only call and residual bytes."""
  of_floats, floats, _ = gradcheck.float_args(fn, args)

  def fwd_bwd(dy, *f):
    y, vjp_fn = jax.vjp(of_floats, *f)
    return y, vjp_fn(dy)  # y too, so the forward is never dead code.

  vjp_fn = jax.jit(lambda *f: jax.vjp(of_floats, *f)[1])(*floats)
  return (
      (jax.jit(fwd_bwd), (dy, *floats)),
      (jax.jit(lambda vjp_fn, dy: vjp_fn(dy)), (vjp_fn, dy)),
      _timing.residual_bytes(of_floats, *floats),
  )


def _hlo(call) -> str:
  """The optimized program with metadata dropped and names canonicalized."""
  fn, args = call
  text = fn.lower(*args).compile().as_text()
  text = re.sub(r", metadata=\{[^}]*\}", "", text[text.index("ENTRY") :])
  names = {}
  return re.sub(
      r"%[\w.-]+", lambda m: names.setdefault(m[0], f"%{len(names)}"), text
  )


def _row(case, shapes, quick, repeats):
  args = _args(case, shapes, quick)
  manual, plain, label = case.fn, case.plain, case.name
  y = manual(*args)
  dy = jax.tree.map(
      lambda y: jax.random.normal(jax.random.key(1), y.shape, y.dtype), y
  )
  m, a = _programs(manual, args, dy), _programs(plain, args, dy)
  step_m, step_a, bwd_m, bwd_a = (
      1e3 * t
      for t in _timing.median_times([m[0], a[0], m[1], a[1]], repeats=repeats)
  )
  same = _hlo(m[0]) == _hlo(a[0])
  shapes = ", ".join(
      "x".join(map(str, s.shape)) for s in args if gradcheck.is_float(s)
  )
  goal = BWD_GOAL.get(label)
  ok = (same or step_m <= step_a) and m[2] <= a[2]
  ok = ok and (goal is None or bwd_m <= goal * bwd_a)
  return (
      f"| {label} | {shapes} | {step_m:.3f} | {step_a:.3f} |"
      f" {step_m / step_a:.2f}x{' (same program)' if same else ''} |"
      f" {bwd_m / bwd_a:.2f}x | {m[2]:,} | {a[2]:,} | {'yes' if ok else 'no'} |"
  )


def main(argv: Sequence[str]) -> None:
  del argv
  quick = QUICK.value
  repeats = 3 if quick else REPEATS.value
  header = (
      "| op | float inputs | manual ms | autodiff ms | fwd+bwd ratio |"
      " bwd-only ratio | manual residual B | autodiff residual B | goal met |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---|"
  )
  lines = [header]
  print(header)
  for case, shapes in _rows():
    lines.append(_row(case, shapes, quick, repeats))
    print(lines[-1], flush=True)
  command = "python -m benchmarks.ops" + (" --quick" if quick else "")
  _timing.write_section(
      "ops",
      "## Ops: hand-written backward vs autodiff of the plain forward\n\n"
      "Each op's forward + backward (`jax.vjp` then the VJP at a fixed random"
      " cotangent) compiled with `jax.jit`, hand-written rule vs autodiff of"
      f" `ops.plain(op)`, median of {repeats} calls after warm-up (the two"
      " called in turn, so load changes hit both alike), float32;"
      " bwd-only times the VJP function alone given its residuals. Residual"
      " bytes are the arrays the VJP function keeps alive (under jit). Goal:"
      " fwd+bwd ratio <= 1.0, residuals <= autodiff's, and batch/layer norm"
      ' bwd-only ratio <= 0.8. "Same program": XLA compiles both fwd+bwd'
      " steps to the same optimized HLO (names and metadata aside), so their"
      " ratio is timing noise and the goal counts as met.\n\n"
      + "\n".join(lines)
      + f"\n\nCommand: `{command}`. Machine: {_timing.machine()}",
  )


if __name__ == "__main__":
  app.run(main)
