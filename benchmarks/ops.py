"""Times each op's hand-written backward against autodiff of its plain forward.

Run: python -m benchmarks.ops [--quick]. Writes the `ops` section of
docs/benchmarks.md. Both sides are jitted and measured in the same run.
"""

import re
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks import _timing
from jaxbp import gradcheck, ops

QUICK = flags.DEFINE_bool(
    "quick", False, "Small sizes, 3 repeats: a smoke run."
)
REPEATS = flags.DEFINE_integer("repeats", 30, "Timed calls per measurement.")

VGG_EARLY, VGG_LATE = (128, 32, 32, 64), (128, 4, 4, 512)
# (label, op, argument shapes or integer-label specs, hyperparameters);
# MLP layers at batch 200, VGG activations at batch 128.
ROWS = [
    ("linear 3072→100", ops.linear, [(200, 3072), (3072, 100), (100,)], {}),
    ("linear 100→10", ops.linear, [(200, 100), (100, 10), (10,)], {}),
    ("relu", ops.relu, [VGG_EARLY], {}),
    ("relu", ops.relu, [VGG_LATE], {}),
    ("leaky_relu", ops.leaky_relu, [VGG_EARLY], {"negative_slope": 0.02}),
    ("elu", ops.elu, [VGG_EARLY], {}),
    ("tanh", ops.tanh, [(200, 100)], {}),
    ("sigmoid", ops.sigmoid, [(200, 100)], {}),
    ("softmax", ops.softmax, [(200, 10)], {}),
    ("softmax", ops.softmax, [(128, 1000)], {}),
    ("log_softmax", ops.log_softmax, [(128, 1000)], {}),
    ("cross_entropy", ops.cross_entropy, [(200, 10), (200, 10)], {}),
    ("softmax_cross_entropy", ops.softmax_cross_entropy,
     [(200, 10), ("labels", 200, 10)], {}),
    ("softmax_cross_entropy", ops.softmax_cross_entropy,
     [(128, 1000), ("labels", 128, 1000)], {}),
    ("batch_norm", ops.batch_norm, [VGG_EARLY, (64,), (64,)], {}),
    ("batch_norm", ops.batch_norm, [VGG_LATE, (512,), (512,)], {}),
    ("batch_norm", ops.batch_norm, [(200, 100), (100,), (100,)], {}),
    ("layer_norm", ops.layer_norm, [(200, 100), (100,), (100,)], {}),
    ("layer_norm", ops.layer_norm, [(4096, 512), (512,), (512,)], {}),
    ("divide", ops.divide, [(200, 3072), (1, 3072)], {}),
    ("normalize", ops.normalize, [(200, 3072)], {}),
    ("expand", ops.expand, [(200, 100)], {"n": 10}),
    ("dropout", ops.dropout, [VGG_EARLY, "key"], {"rate": 0.5}),
]  # fmt: skip
# Ops whose backward alone is also timed (goal: <= 0.8x autodiff's).
BWD_GOAL = {"batch_norm": 0.8, "layer_norm": 0.8}


def _shrink(shape):
  """--quick: at most 16 per axis (the same cap keeps shapes compatible)."""
  return tuple(min(n, 16) for n in shape)


def _args(specs, quick):
  key, args = jax.random.key(0), []
  for spec in specs:
    key, sub = jax.random.split(key)
    if spec == "key":
      args.append(sub)
    elif spec[0] == "labels":
      n, c = _shrink(spec[1:]) if quick else spec[1:]
      args.append(jax.random.randint(sub, (n,), 0, c))
    else:
      shape = _shrink(spec) if quick else spec
      x = jax.random.uniform(sub, shape, jnp.float32, 0.5, 1.5)
      # Positive, row-normalized inputs suit every op (probs for CE).
      args.append(x / jnp.sum(x, -1, keepdims=True) if len(shape) > 1 else x)
  return args


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


def _row(label, op, specs, static, quick, repeats):
  args = _args(specs, quick)
  manual = lambda *a: op(*a, **static)
  plain = lambda *a: ops.plain(op)(*a, **static)
  y = manual(*args)
  dy = jax.random.normal(jax.random.key(1), y.shape, y.dtype)
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
  for label, op, specs, static in ROWS:
    lines.append(_row(label, op, specs, static, quick, repeats))
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
