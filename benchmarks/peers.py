"""jaxbp against what users would pick instead: PyTorch, and the seeds' NumPy.

Run from the repository root, on an idle machine (PyTorch comes with the
``bench`` extra: ``pip install -e '.[bench]'``)::

  python -m benchmarks.peers [--batches=128,32] [--passes=2] [--quick]

Every figure is measured in a child process of this one (``--worker=...``),
one child after another, so each has the machine to itself and its peak RSS
(``ru_maxrss``) is its own. The list of children runs ``--passes`` times, in
reverse order every other pass, and each figure is the best pass (load from
outside can only slow a pass). Rows:

* the seeds' VGG (Table 1) Adam train step (forward, backward, update), same
  batch and optimizer: jaxbp hand-written, jaxbp autodiff, PyTorch eager
  (NCHW and channels-last) and ``torch.compile``; fp32, then bf16 compute;
* every VGG layer alone (conv per map size, BN+ReLU, max-pool), forward and
  forward+backward, jaxbp vs PyTorch eager;
* the seeds' 2019 MLP protocol (1,500 SGD steps, batch 200, 3072-100-10
  LeakyReLU): jaxbp against a NumPy implementation in the seeds' style
  (``benchmarks/numpy_mlp.py``), training only (data already in memory).

Writes the ``peers`` section of ``docs/benchmarks.md``.
"""

import json
import resource
import statistics
import subprocess
import sys
import time

from absl import app, flags

QUICK = flags.DEFINE_bool("quick", False, "Batch 8, 2 steps: a smoke run.")
BATCHES = flags.DEFINE_list("batches", ["128", "32"], "VGG batch sizes.")
PASSES = flags.DEFINE_integer("passes", 2, "Rounds over all the children.")
STEPS = flags.DEFINE_integer("steps", 12, "Timed VGG steps per child.")
ONLY = flags.DEFINE_string("only", "", "Run the rows whose name has this.")
WORKER = flags.DEFINE_string("worker", None, "Internal: one child's job.")

# The seeds' VGG, Table 1; the same widths as jaxbp.models.VGG's default.
VGG_TABLE1 = ((64,), (128,), (256, 256), (512, 512), (512, 512))
LR = 1e-4  # The seeds' Adam.

STEP_ROWS = (
    ("jaxbp hand-written", "jax:manual"),
    ("jaxbp autodiff", "jax:autodiff"),
    ("PyTorch eager", "torch:eager"),
    ("PyTorch eager, channels-last", "torch:channels_last"),
    ("torch.compile", "torch:compile"),
)


def peak_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time_calls(call, steps, warmup=3):
  """Median seconds of `call()` (which must block until done).

  Not `benchmarks._timing.median_time`: that imports JAX, which would load
  into the PyTorch children too and add to their peak RSS.
  """
  for _ in range(warmup):
    call()
  times = []
  for _ in range(steps):
    began = time.perf_counter()
    call()
    times.append(time.perf_counter() - began)
  return statistics.median(times)


# ---------------------------------------------------------------- jaxbp side


def jax_vgg_step(vjp, batch, dtype):
  """A call that runs one compiled Adam step of jaxbp's VGG, returning the
  loss (of the parameters before the update)."""
  import jax
  import jax.numpy as jnp
  import optax
  from flax import nnx

  from jaxbp import _memory, models, nn, ops

  compute = jnp.bfloat16 if dtype == "bf16" else None

  def init():
    model = models.VGG(vjp=vjp, dtype=compute, rngs=nnx.Rngs(0))
    return model, nnx.Optimizer(model, optax.adam(LR), wrt=nnx.Param)

  # The step compiles against shapes, before the state and the batch exist:
  # XLA's compiler peaks at a few hundred MiB, which then need not sit on top
  # of the parameters and Adam's moments (batch 32: peak RSS about 680 ->
  # 560 MiB).
  graphdef, shapes = nnx.split(nnx.eval_shape(init))
  loss = nn.select(ops.softmax_cross_entropy, vjp)

  def step(state, x, labels):
    model, optimizer = nnx.merge(graphdef, state)
    value, grads = nnx.value_and_grad(lambda m: loss(m(x), labels))(model)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), value

  batch_shapes = (
      jax.ShapeDtypeStruct((batch, 32, 32, 3), jnp.float32),
      jax.ShapeDtypeStruct((batch,), jnp.int32),
  )
  lowered = jax.jit(step, donate_argnums=0).lower(shapes, *batch_shapes)
  compiled = lowered.compile()
  _memory.trim()  # As train/loop.py does after compiling its step.
  # One program, as train/registry.py initializes, not one per op.
  state = nnx.state(nnx.jit(init)())
  kx, ky = jax.random.split(jax.random.key(0))
  x = jax.random.uniform(kx, batch_shapes[0].shape, jnp.float32)
  labels = jax.random.randint(ky, (batch,), 0, 10, jnp.int32)
  jax.clear_caches()  # The programs above, which ran once.
  _memory.trim()
  box = [state]

  def call():
    box[0], value = compiled(box[0], x, labels)
    return value.block_until_ready()

  return call


def jax_layers(batch, dtype):
  """(name, forward call, forward+backward call) of every VGG layer alone."""
  import jax
  import jax.numpy as jnp

  from jaxbp import ops

  compute = jnp.bfloat16 if dtype == "bf16" else jnp.float32
  key = iter(jax.random.split(jax.random.key(1), 64))
  rand = lambda *s: jax.random.normal(next(key), s, jnp.float32).astype(compute)

  def timed(fn, *args):
    fwd = jax.jit(fn)

    def forward_backward(*a):  # Returns y too, as PyTorch's step has it.
      y, vjp = jax.vjp(fn, *a)
      return y, vjp(jnp.ones_like(y))

    grad = jax.jit(forward_backward)

    def block(f):
      return lambda: jax.block_until_ready(f(*args))

    return block(fwd), block(grad)

  for name, size, cin, cout in vgg_layers():
    x, w, b = rand(batch, size, size, cin), rand(3, 3, cin, cout), rand(cout)
    yield (name, *timed(ops.conv2d, x, w, b))
  for name, size, c in vgg_norm_layers():
    x, g, bt = rand(batch, size, size, c), rand(c), rand(c)
    yield (
        name,
        *timed(lambda x, g, b: ops.relu(ops.batch_norm(x, g, b)), x, g, bt),
    )
  for name, size, c in vgg_pool_layers():
    yield (
        name,
        *timed(
            lambda x: ops.max_pool2d(x, 3, 2, 1), rand(batch, size, size, c)
        ),
    )


# -------------------------------------------------------------- PyTorch side


def torch_vgg():
  from torch import nn

  layers, width = [], 3
  for group in VGG_TABLE1:
    for features in group:
      layers += [
          nn.Conv2d(width, features, 3, padding=1),
          nn.BatchNorm2d(features),
          nn.ReLU(inplace=True),
      ]
      width = features
    layers.append(nn.MaxPool2d(3, 2, 1))
  return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width, 10))


def torch_vgg_step(mode, batch, dtype):
  import torch

  torch.manual_seed(0)
  model = torch_vgg()
  x = torch.rand(batch, 3, 32, 32)
  labels = torch.randint(0, 10, (batch,))
  if mode == "channels_last":
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
  optimizer = torch.optim.Adam(model.parameters(), lr=LR)
  loss_fn = torch.nn.CrossEntropyLoss()
  forward = torch.compile(model) if mode == "compile" else model

  def call():
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", torch.bfloat16, enabled=dtype == "bf16"):
      loss = loss_fn(forward(x), labels)
    loss.backward()
    optimizer.step()

  return call


def torch_layers(batch, dtype):
  import torch
  import torch.nn.functional as F

  compute = torch.bfloat16 if dtype == "bf16" else torch.float32
  gen = torch.Generator().manual_seed(1)
  rand = lambda *s: torch.randn(*s, generator=gen).to(compute)

  def timed(fn, *args):
    def fwd():
      with torch.no_grad():
        fn(*args)

    leaves = [a.detach().requires_grad_() for a in args]

    def grad():
      y = fn(*leaves)
      y.backward(torch.ones_like(y))
      for a in leaves:
        a.grad = None

    return fwd, grad

  for name, size, cin, cout in vgg_layers():
    x, w, b = rand(batch, cin, size, size), rand(cout, cin, 3, 3), rand(cout)
    yield (name, *timed(lambda x, w, b: F.conv2d(x, w, b, padding=1), x, w, b))
  for name, size, c in vgg_norm_layers():
    x, g, bt = rand(batch, c, size, size), rand(c), rand(c)
    yield (
        name,
        *timed(
            lambda x, g, b: F.relu(F.batch_norm(x, None, None, g, b, True)),
            x,
            g,
            bt,
        ),
    )
  for name, size, c in vgg_pool_layers():
    yield (
        name,
        *timed(lambda x: F.max_pool2d(x, 3, 2, 1), rand(batch, c, size, size)),
    )


def vgg_layers():
  """(name, map size, in, out) of each distinct conv of the VGG."""
  seen, size, width = [], 32, 3
  for group in VGG_TABLE1:
    for features in group:
      if (size, width, features) not in seen:
        seen.append((size, width, features))
      width = features
    size //= 2
  return [(f"conv {s}x{s} {i}->{o}", s, i, o) for s, i, o in seen]


def vgg_norm_layers():
  sizes = [(32, 64), (16, 128), (8, 256), (4, 512), (2, 512)]
  return [(f"BN+ReLU {s}x{s}x{c}", s, c) for s, c in sizes]


def vgg_pool_layers():
  sizes = [(32, 64), (16, 128), (8, 256), (4, 512), (2, 512)]
  return [(f"max-pool 3x3/2 {s}x{s}x{c}", s, c) for s, c in sizes]


# ------------------------------------------------------------------ children


def run_worker(spec: str) -> dict:
  """Runs one child's job (`kind:...`) and returns its figures."""
  kind, *rest = spec.split(":")
  if kind == "step":
    framework, mode, batch, dtype = rest
    make = jax_vgg_step if framework == "jax" else torch_vgg_step
    call = make(mode, int(batch), dtype)
    return {
        "seconds": _time_calls(call, STEPS.value),
        "rss_mib": peak_rss_mib(),
    }
  if kind == "layers":
    framework, batch, dtype = rest
    layers = jax_layers if framework == "jax" else torch_layers
    out = {}
    for name, fwd, grad in layers(int(batch), dtype):
      out[name] = [_time_calls(fwd, 5), _time_calls(grad, 5)]
    return out
  if kind == "mlp":
    from benchmarks import numpy_mlp

    (framework,) = rest
    return {"seconds": numpy_mlp.train_seconds(framework)}
  raise ValueError(f"unknown worker {spec!r}")


def child(spec: str) -> dict | None:
  """Runs `--worker=spec` in a child process; None (and why) if it failed."""
  command = [sys.executable, "-m", "benchmarks.peers", f"--worker={spec}"]
  command += [f"--steps={STEPS.value}"]
  result = subprocess.run(command, capture_output=True, text=True)
  if result.returncode != 0:
    tail = (result.stderr.strip().splitlines() or ["?"])[-1]
    print(f"  {spec}: failed ({tail[:200]})", flush=True)
    return None
  return json.loads(result.stdout.strip().splitlines()[-1])


GOAL_ROWS = ("jax:manual", "torch:eager")


def _step_specs(batches, passes):
  """(row, spec, passes) of every train-step child.

  Per batch the goal's two rows come first, one right after the other (in
  either order, as passes alternate), so that the machine's speed changes
  little between the two figures of a ratio: on a shared 2-core VM, PyTorch
  eager's batch-32 step ran at 148 and 116 images/s in two runs 25 minutes
  apart. They get every pass; the other rows (slow, or context) one.
  """
  specs = []
  for batch in batches:
    rows = sorted(STEP_ROWS, key=lambda row: row[1] not in GOAL_ROWS)
    for name, worker in rows:
      n = passes if worker in GOAL_ROWS else 1
      specs.append(((name, batch, "fp32"), f"step:{worker}:{batch}:fp32", n))
  batch = batches[0]
  for name, worker in (STEP_ROWS[0], STEP_ROWS[2]):
    specs.append(((name, batch, "bf16"), f"step:{worker}:{batch}:bf16", 1))
  return specs


def _run_specs(specs):
  """Best figures of each spec over its passes (reversed every other pass);
  a spec run more than once also keeps every pass's seconds, in pass order
  (None where that pass failed), under ``"passes"``."""
  best, seconds = {}, {}
  for p in range(max(n for *_, n in specs)):
    todo = [s for s in specs if s[2] > p]
    for key, spec, _ in todo if p % 2 == 0 else todo[::-1]:
      if ONLY.value not in spec:
        continue
      print(f"pass {p + 1}: {spec}", flush=True)
      got = child(spec)
      seconds.setdefault(key, []).append(got and got["seconds"])
      if got is None:
        best.setdefault(key, None)
        continue
      old = best.get(key)
      if old is None or got["seconds"] < old["seconds"]:
        best[key] = got
  for key, passes in seconds.items():
    if len(passes) > 1 and best[key] is not None:
      best[key] = {**best[key], "passes": passes}
  return best


def _step_table(best, batches):
  rows = [
      (
          "| train step | batch | compute | images/s | vs PyTorch eager |"
          " peak RSS MiB |"
      ),
      "|---|---:|---|---:|---:|---:|",
  ]
  names = [name for name, _ in STEP_ROWS]
  order = lambda key: (
      key[2] != "fp32",
      batches.index(key[1]),
      names.index(key[0]),
  )
  for name, batch, dtype in sorted(best, key=order):
    got = best[(name, batch, dtype)]
    if got is None:
      rows.append(f"| {name} | {batch} | {dtype} | failed | | |")
      continue
    eager = best.get(("PyTorch eager", batch, dtype))
    ratio = f"{eager['seconds'] / got['seconds']:.2f}x" if eager else "—"
    rows.append(
        f"| {name} | {batch} | {dtype} | {batch / got['seconds']:,.1f} |"
        f" {ratio} | {got['rss_mib']:,.0f} |"
    )
  return rows


def _goals(best, batches):
  """The issue's goal per batch: >= 1.2x PyTorch eager, fp32, RSS <= its;
  then the ratio of each pass, where both rows ran in every pass."""
  lines = []
  for batch in batches:
    ours = best.get(("jaxbp hand-written", batch, "fp32"))
    eager = best.get(("PyTorch eager", batch, "fp32"))
    if not (ours and eager):
      continue
    ratio = eager["seconds"] / ours["seconds"]
    rss = ours["rss_mib"] / eager["rss_mib"]
    line = (
        f"Goal at batch {batch} (hand-written >= 1.2x PyTorch eager, fp32;"
        f" peak RSS <= PyTorch's): {ratio:.2f}x"
        f" ({'met' if ratio >= 1.2 else 'not met'}), RSS {rss:.2f}x PyTorch's"
        f" ({'met' if rss <= 1 else 'not met'})."
    )
    mine, theirs = ours.get("passes", []), eager.get("passes", [])
    if len(mine) == len(theirs) > 1:
      each = ", ".join(
          f"{t / m:.2f}x" if m and t else "failed"
          for m, t in zip(mine, theirs, strict=True)
      )
      line += f" Pass by pass (the two back to back): {each}."
    lines.append(line)
  return lines


def _layer_table(jax_ms, torch_ms):
  rows = [
      (
          "| layer (batch {}) | jaxbp fwd ms | PyTorch fwd ms | jaxbp fwd+bwd"
          " ms | PyTorch fwd+bwd ms | fwd+bwd ratio |"
      ),
      "|---|---:|---:|---:|---:|---:|",
  ]
  for name, (jf, jb) in jax_ms.items():
    tf, tb = torch_ms.get(name, (float("nan"), float("nan")))
    rows.append(
        f"| {name} | {jf * 1e3:.1f} | {tf * 1e3:.1f} | {jb * 1e3:.1f} |"
        f" {tb * 1e3:.1f} | {tb / jb:.2f}x |"
    )
  return rows


def main(argv):
  del argv
  if WORKER.value:
    print(json.dumps(run_worker(WORKER.value)), flush=True)
    return
  from benchmarks import _timing

  batches = [8] if QUICK.value else [int(b) for b in BATCHES.value]
  if QUICK.value:
    flags.FLAGS.steps = 2
  best = _run_specs(_step_specs(batches, PASSES.value))
  layers = {}
  for framework in ("jax", "torch"):
    spec = f"layers:{framework}:{batches[0]}:fp32"
    if ONLY.value in spec:
      print(spec, flush=True)
      layers[framework] = child(spec) or {}
  mlp = {}
  for framework in ("jaxbp", "numpy", "numpy32"):
    if ONLY.value in f"mlp:{framework}" and not QUICK.value:
      print(f"mlp:{framework}", flush=True)
      mlp[framework] = child(f"mlp:{framework}")
  import torch

  text = [
      "## Peers: jaxbp vs PyTorch (and the seeds' NumPy MLP)",
      "",
      (
          "The seeds' VGG (Table 1, 9.2M parameters) Adam train step on random"
          " 32x32x3 images, each row in its own child process (its machine"
          f" alone; peak RSS its own), median of {STEPS.value} timed steps"
          " after 3 warm-up steps; the PyTorch eager and jaxbp hand-written"
          f" rows are the best of {PASSES.value} passes (order reversed every"
          " other pass), the other rows one pass. PyTorch rows use"
          " `torch.optim.Adam`, `CrossEntropyLoss`, NCHW unless noted; bf16"
          " is `torch.autocast` there and the models' `dtype=bfloat16` (fp32"
          " parameters) in jaxbp."
      ),
      "",
      *_step_table(best, batches),
      "",
      *_goals(best, batches),
  ]
  if layers.get("jax") and layers.get("torch"):
    table = _layer_table(layers["jax"], layers["torch"])
    table[0] = table[0].format(batches[0])
    text += [
        "",
        (
            "Each VGG layer alone, fp32, median of 5 calls: jaxbp's op (its"
            " `choose_impl` pick for convolutions) under `jax.jit` against"
            " `torch.nn.functional`; fwd+bwd is the forward and the gradients"
            " of every input (the cotangent is ones). Ratio > 1: jaxbp faster."
        ),
        "",
        *table,
    ]
  if mlp and all(mlp.values()):
    j, n64, n32 = (mlp[k]["seconds"] for k in ("jaxbp", "numpy", "numpy32"))
    text += [
        "",
        (
            "The seeds' 2019 MLP protocol (3072-100-10 LeakyReLU, SGD 2e-3,"
            " 1,500 steps of batch 200 sampled from data in memory; training"
            " only, `benchmarks/numpy_mlp.py`):"
        ),
        "",
        "| MLP protocol | seconds | jaxbp speedup |",
        "|---|---:|---:|",
        f"| jaxbp (float32, jit) | {j:.2f} | — |",
        f"| NumPy as the seeds (float64) | {n64:.2f} | {n64 / j:.1f}x |",
        f"| NumPy in float32 | {n32:.2f} | {n32 / j:.1f}x |",
    ]
  command = " ".join(["python -m benchmarks.peers", *sys.argv[1:]])
  note = "`--quick` run: checks the script, not figures." if QUICK.value else ""
  text += [
      "",
      note,
      (
          f"Command: `{command}`. Machine: {_timing.machine()} PyTorch"
          f" {torch.__version__}, {torch.get_num_threads()} threads."
      ),
  ]
  _timing.write_section("peers", "\n".join(text))


if __name__ == "__main__":
  app.run(main)
