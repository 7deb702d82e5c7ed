"""Times the VGG (Table 1) conv and pool layers, hand-written vs autodiff.

Run: python -m benchmarks.conv [--quick]. Writes the `conv` section of
docs/benchmarks.md. "Autodiff" differentiates ``ops.plain(op)``: the lax
formulations (``lax.conv_general_dilated``, ``lax.reduce_window``).
"""

import statistics
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks import _timing
from jaxbp import ops
from jaxbp.ops import _conv_impl, pool

QUICK = flags.DEFINE_bool("quick", False, "Batch 8, 2 repeats: a smoke run.")
# Table 1 at 32x32 input: groups of conv3x3 SAME, each followed by a 3x3/2
# pad-1 max-pool, so the maps go 32 -> 16 -> 8 -> 4 -> 2 -> 1.
GROUPS = [
    (32, [(3, 64)]),
    (16, [(64, 128)]),
    (8, [(128, 256), (256, 256)]),
    (4, [(256, 512), (512, 512)]),
    (2, [(512, 512), (512, 512)]),
]


def _vjp_step(fn):
  """fwd + bwd of all float arguments, jitted, for a given cotangent."""
  return jax.jit(lambda dy, *args: jax.vjp(fn, *args)[1](dy))


def _normal(key, shape, scale=1.0):
  return scale * jax.random.normal(key, shape, jnp.float32)


def _ms(fns, *args, repeats):
  """Median ms of each fn in `fns`, timed in interleaved rounds so that load
  from other processes hits manual and autodiff alike.

  A round times each fn over enough calls to last ~20 ms (one call for the
  slow ones), which steadies the sub-millisecond pooling layers.
  """
  calls = {}
  for name, fn in fns.items():
    jax.block_until_ready(fn(*args))  # Compiles outside the timing.
    once = _timing.median_time(fn, *args, repeats=1, warmup=0)
    calls[name] = min(max(int(0.02 / once), 1), 50)
  times = {name: [] for name in fns}
  order = list(fns.items())
  for _ in range(repeats):
    for name, fn in order:
      t = _timing.median_time(fn, *args, repeats=calls[name], warmup=0)
      times[name].append(t)
    order.reverse()  # Neither goes first every round.
  return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def _fwd_and_vjp(op, args, dy, repeats):
  """{(impl, 'fwd' | 'all'): ms} for the op and autodiff of its reference."""
  fns = {"manual": op, "autodiff": ops.plain(op)}
  fwd = _ms({k: jax.jit(f) for k, f in fns.items()}, *args, repeats=repeats)
  steps = {k: _vjp_step(f) for k, f in fns.items()}
  both = _ms(steps, dy, *args, repeats=repeats)
  return {
      **{(k, "fwd"): v for k, v in fwd.items()},
      **{(k, "all"): v for k, v in both.items()},
  }


def _conv_rows(batch, repeats):
  rows, key = [], jax.random.key(0)
  for size, convs in GROUPS:
    for c_in, c_out in convs:
      k1, k2, k3, key = jax.random.split(key, 4)
      x = _normal(k1, (batch, size, size, c_in))
      w = _normal(k2, (3, 3, c_in, c_out), (9 * c_in) ** -0.5)
      b, dy = jnp.zeros(c_out), _normal(k3, (batch, size, size, c_out))
      t = _fwd_and_vjp(ops.conv2d, (x, w, b), dy, repeats)
      impl = "/".join(_conv_impl.choose_impl(x.shape, w.shape))
      rows.append((f"conv3x3 {c_in}→{c_out} @{size}x{size}", impl, t))
      print(rows[-1], flush=True)
  return rows


def _pool_rows(batch, repeats):
  rows, key = [], jax.random.key(1)
  for size, convs in GROUPS:
    k1, k2, key = jax.random.split(key, 3)
    x = _normal(k1, (batch, size, size, convs[-1][1]))
    dy = _normal(k2, (batch, size // 2, size // 2, x.shape[3]))
    t = _fwd_and_vjp(ops.max_pool2d, (x,), dy, repeats)
    # The forward a train step runs: y plus the residual (first-max index).
    fwd = jax.jit(lambda x: pool._max_pool2d_fwd(x, 3, 2, 1))
    first = fwd(x)[1][0]
    bwd = jax.jit(lambda r, dy: pool._max_pool2d_bwd(3, 2, 1, (r, x.shape), dy))
    t["manual", "fwd_res"] = _ms({"": fwd}, x, repeats=repeats)[""]
    t["manual", "bwd"] = _ms({"": bwd}, first, dy, repeats=repeats)[""]
    rows.append((f"max-pool 3x3/2 pad 1, {x.shape[3]} @{size}x{size}", t))
    print(rows[-1], flush=True)
  return rows


def _stack(conv_op, bn_op, relu_op, pool_op):
  def forward(params, x):
    layers = iter(params)
    for _, convs in GROUPS:
      for _ in convs:
        w, b, gamma, beta = next(layers)
        x = relu_op(bn_op(conv_op(x, w, b), gamma, beta))
      x = pool_op(x)
    return x

  return jax.jit(
      lambda params, x, dy: jax.grad(lambda p: jnp.vdot(dy, forward(p, x)))(
          params
      )
  )


def _stack_times(batch, repeats):
  key, params = jax.random.key(2), []
  for _, convs in GROUPS:
    for c_in, c_out in convs:
      key, k = jax.random.split(key)
      w = _normal(k, (3, 3, c_in, c_out), (9 * c_in) ** -0.5)
      params.append((w, jnp.zeros(c_out), jnp.ones(c_out), jnp.zeros(c_out)))
  x = _normal(key, (batch, 32, 32, 3))
  dy = _normal(key, (batch, 1, 1, 512))
  manual = (ops.conv2d, ops.batch_norm, ops.relu, ops.max_pool2d)
  fns = {
      "manual": _stack(*manual),
      "autodiff": _stack(*map(ops.plain, manual)),
  }
  return _ms(fns, params, x, dy, repeats=repeats)


def _goals(conv_rows, pool_rows, stack):
  """The issue's goals, as ratios from this run."""
  speedup = lambda t: t["autodiff", "all"] / t["manual", "all"]
  layers = [t for *_, t in conv_rows] + [t for _, t in pool_rows]
  tiny = [t for name, _, t in conv_rows if name.endswith("512 @2x2")]
  bwd_fwd = max(
      t["manual", "bwd"] / t["manual", "fwd_res"] for _, t in pool_rows
  )
  return (
      "Goals, from this run: slowest layer speedup"
      f" {min(map(speedup, layers)):.2f}x (goal: >= 1x); 2x2 512→512 conv"
      f" {min(map(speedup, tiny)):.0f}x (goal: >= 50x); max-pool backward at"
      f" most {bwd_fwd:.1f}x its forward with residuals (goal: <= 3x); whole"
      " stack"
      f" {stack['autodiff'] / stack['manual']:.1f}x (goal: >= 5x)."
  )


def _conv_table(conv_rows):
  lines = [
      (
          "| layer | path | fwd manual | fwd autodiff | fwd+bwd manual |"
          " fwd+bwd autodiff | speedup |"
      ),
      "|---|---|---:|---:|---:|---:|---:|",
  ]
  for name, impl, t in conv_rows:
    lines.append(
        f"| {name} | {impl} | {t['manual', 'fwd']:.1f} |"
        f" {t['autodiff', 'fwd']:.1f} | {t['manual', 'all']:.1f} |"
        f" {t['autodiff', 'all']:.1f} |"
        f" {t['autodiff', 'all'] / t['manual', 'all']:.1f}x |"
    )
  return lines


def _pool_table(pool_rows):
  lines = [
      (
          "| layer | fwd | fwd + residual | bwd manual | bwd / (fwd + res) |"
          " fwd+bwd manual | fwd+bwd autodiff | speedup |"
      ),
      "|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for name, t in pool_rows:
    lines.append(
        f"| {name} | {t['manual', 'fwd']:.2f} | {t['manual', 'fwd_res']:.2f} |"
        f" {t['manual', 'bwd']:.2f} |"
        f" {t['manual', 'bwd'] / t['manual', 'fwd_res']:.1f}x |"
        f" {t['manual', 'all']:.2f} | {t['autodiff', 'all']:.2f} |"
        f" {t['autodiff', 'all'] / t['manual', 'all']:.1f}x |"
    )
  return lines


def _markdown(batch, conv_rows, pool_rows, stack, command):
  lines = [
      "## Conv and pooling: VGG (Table 1) layers, hand-written vs autodiff",
      "",
      (
          f"Batch {batch}, NHWC float32, 32x32 input; medians in ms over rounds"
          " that alternate manual and autodiff; fwd+bwd = forward plus the"
          " backward of every input; autodiff differentiates the lax"
          " formulation (`ops.plain`). The path column is"
          " `_conv_impl.choose_impl`'s pick for y/dx/dw. The maps go"
          " 32→16→8→4→2 and the last max-pool leaves 1x1x512 for the"
          " classifier, so no conv runs at 1x1. All ratios come from this one"
          " run."
      ),
      "",
      *_conv_table(conv_rows),
      "",
      *_pool_table(pool_rows),
      "",
      (
          "Whole Table-1 conv/pool stack (10 x conv3x3 + batch_norm + relu, 5"
          " max-pools), gradient of all parameters: manual"
          f" {stack['manual']:.0f} ms, autodiff {stack['autodiff']:.0f} ms,"
          f" speedup {stack['autodiff'] / stack['manual']:.1f}x."
      ),
      "",
      _goals(conv_rows, pool_rows, stack),
      "",
  ]
  if batch != 128:
    lines.append(
        f"`--quick` run (batch {batch}): checks the script, not figures."
    )
  lines.append(f"Command: `{command}`. Machine: {_timing.machine()}")
  return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
  del argv
  batch, repeats = (8, 2) if QUICK.value else (128, 5)
  conv_rows = _conv_rows(batch, repeats)
  pool_rows = _pool_rows(batch, repeats)
  stack = _stack_times(batch, max(repeats - 2, 2))
  command = "python -m benchmarks.conv" + (" --quick" if QUICK.value else "")
  markdown = _markdown(batch, conv_rows, pool_rows, stack, command)
  print(markdown)
  _timing.write_section("conv", markdown)


if __name__ == "__main__":
  app.run(main)
