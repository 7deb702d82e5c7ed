"""jaxbp against what users would pick instead: PyTorch, and the seeds' NumPy.

Run from the repository root, on an idle machine (PyTorch comes with the
``bench`` extra: ``pip install -e '.[bench]'``)::

  python -m benchmarks.peers [--device=auto] [--batches=128,32] [--passes=2]
                             [--quick]

Both frameworks run on one device: the GPU where JAX has one (``--device=auto``;
``--device=cpu`` compares the CPUs of a GPU machine). Every figure is measured in a child process of this one (``--worker=...``),
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

On a GPU the step runs at batch 512, in fp32 (TF32 on tensor cores, JAX's
default precision there, and PyTorch's with ``allow_tf32``) and bf16, every
row in both; each ratio is against ``torch.compile``, and the table gives the
model FLOP utilisation (:func:`vgg_train_flops` over the device's dense peak,
:func:`peak_tflops`) and the peak GPU memory. The MLP protocol runs on CPU only.

Writes the ``peers`` section of ``docs/benchmarks.md`` (``peers-gpu`` for a GPU
run).
"""

import functools
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from typing import NamedTuple

from absl import app, flags

QUICK = flags.DEFINE_bool("quick", False, "Batch 8, 2 steps: a smoke run.")
DEVICE = flags.DEFINE_enum(
    "device",
    "auto",
    ["auto", "cpu", "gpu"],
    "Where both frameworks run; 'auto': the GPU where JAX has one.",
)
BATCHES = flags.DEFINE_list(
    "batches", None, "VGG batch sizes (default: 128,32 on CPU, 512 on GPU)."
)
PASSES = flags.DEFINE_integer(
    "passes", 2, "Rounds over all the children.", lower_bound=1
)
STEPS = flags.DEFINE_integer(
    "steps",
    None,
    "Timed VGG steps per child (default: 12 on CPU, 50 on GPU).",
    lower_bound=1,
)
PEAK = flags.DEFINE_list(
    "peak_tflops",
    None,
    "The GPU's dense peak TFLOP/s in TF32 and in bf16 (e.g. 494.7,989.4) for"
    " the MFU column; default: NVIDIA's datasheet figure for known GPUs.",
)
ONLY = flags.DEFINE_string("only", "", "Run the rows whose name has this.")


def _positive(texts) -> bool:
  """Whether every text is a positive number."""
  return all(re.fullmatch(r"\d+(\.\d*)?", t) and float(t) > 0 for t in texts)


flags.register_validator(
    "batches",
    lambda batches: batches is None
    or all(b.isdigit() and int(b) > 0 for b in batches),
    "--batches takes positive whole numbers separated by commas, e.g."
    " --batches=128,32.",
)
flags.register_validator(
    "peak_tflops",
    lambda given: given is None or (len(given) == 2 and _positive(given)),
    "--peak_tflops takes two positive numbers, the GPU's dense TF32 and bf16"
    " peaks in TFLOP/s, e.g. --peak_tflops=494.7,989.4.",
)
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


class Device(NamedTuple):
  """What a run on one kind of device measures, and against what."""

  batches: tuple[int, ...]
  steps: int  # Timed steps per child.
  reference: str  # The step row every ratio is against.
  goal: float  # Hand-written over reference, at least.
  bf16_rows: tuple[str, ...]  # The step rows also run in bf16.
  section: str  # Of docs/benchmarks.md.


DEVICES = {
    # Issue 12: >= 1.2x PyTorch eager, peak RSS at most its.
    "cpu": Device(
        (128, 32),
        12,
        "torch:eager",
        1.2,
        ("jax:manual", "torch:eager"),
        "peers",
    ),
    # Issue 12: at least torch.compile's speed, fp32 and bf16.
    "gpu": Device(
        (512,),
        50,
        "torch:compile",
        1.0,
        tuple(worker for _, worker in STEP_ROWS),
        "peers-gpu",
    ),
}

# Dense (no sparsity) tensor-core peaks, TFLOP/s, (TF32, bf16), from NVIDIA's
# datasheets; first match of the device name wins. JAX runs float32 convs and
# matmuls in TF32 on these GPUs by default (DESIGN.md), so fp32 rows are held
# against the TF32 peak. Cards with other variants (NVL) are left to
# --peak_tflops.
PEAKS = (
    (r"NVL", None),
    (r"H100.*PCIe", (378.0, 756.0)),
    (r"H100|H200|GH200", (494.7, 989.4)),
    (r"A100", (156.0, 312.0)),
    (r"\bL4\b", (60.0, 121.0)),
)


def peak_tflops(device_kind: str, given=None) -> dict[str, float] | None:
  """Returns {'fp32': TF32 peak, 'bf16': peak} of the GPU named
  ``device_kind`` (or of ``given``, two numbers), None where not known."""
  if given:
    if len(given) != 2:
      raise ValueError(
          f"--peak_tflops takes two numbers, TF32 and bf16, got {given!r};"
          " e.g. --peak_tflops=494.7,989.4 for an H100 SXM."
      )
    return dict(zip(("fp32", "bf16"), map(float, given), strict=True))
  for pattern, peaks in PEAKS:
    if re.search(pattern, device_kind):
      return peaks and dict(zip(("fp32", "bf16"), peaks, strict=True))
  return None


def vgg_train_flops(batch: int) -> int:
  """Model FLOPs of one train step of the seeds' VGG (2 per multiply-add):
  the forward's convolutions (every kernel tap, padding included, as
  PyTorch's ``FlopCounterMode`` counts them) and linear layer, their kernel
  gradients, and their input gradients but the first conv's (the data needs
  none). Norms, pooling and the update are not counted."""
  macs, size, width = [], 32, 3
  for group in VGG_TABLE1:
    for features in group:
      macs.append(size * size * 9 * width * features)
      width = features
    size = (size - 1) // 2 + 1  # 3x3 window, stride 2, padding 1.
  macs.append(width * 10)
  return 2 * batch * (3 * sum(macs) - macs[0])


def peak_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


ROW_BUDGET_S = 60.0  # Per child: timed calls stop past it (with 3 done).


def _time_calls(call, steps, warmup=3, budget=ROW_BUDGET_S):
  """Seconds of each timed `call()` (which must block until done).

  ``warmup`` untimed calls, then ``steps`` timed ones; a slow call cuts both
  short, so that a row PyTorch emulates (bf16 on a CPU without bf16 units
  ran at 37 s a step) costs minutes, not a quarter of an hour: the warm-up
  ends after its second call where that one took more than ``budget / 12``,
  and the timed calls end once they took ``budget`` seconds together, with
  at least 3 (or ``steps``, if fewer) done. Their count tells the reader.

  Not `benchmarks._timing.median_time`: that imports JAX, which would load
  into the PyTorch children too and add to their peak RSS.
  """
  for i in range(warmup):
    began = time.perf_counter()
    call()
    if i >= 1 and time.perf_counter() - began > budget / 12:
      break
  times = []
  while len(times) < steps:
    began = time.perf_counter()
    call()
    times.append(time.perf_counter() - began)
    if sum(times) > budget and len(times) >= 3:
      break
  return times


# ---------------------------------------------------------------- jaxbp side


def jax_on(device):
  """Raises unless JAX's default backend is ``device`` ('cpu' or 'gpu').

  Imports jaxbp first: asking JAX for its backend starts it, and XLA reads
  the flags jaxbp sets (``jaxbp._xla_flags``) only before that. Without
  this the jaxbp rows ran under XLA's defaults: on a 2-core AVX2 AMD EPYC,
  the hand-written VGG step at batch 32 took 338-388 ms (PyTorch eager
  350-404), and 259-270 ms (PyTorch 417-471) with it.
  """
  import jaxbp  # noqa: F401, I001  (first: sets XLA_FLAGS)
  import jax

  if jax.default_backend() != device:
    raise RuntimeError(
        f"JAX runs on {jax.default_backend()!r} here, not {device!r}: install"
        " JAX for that device (pip install -U 'jax[cuda12]' for an NVIDIA"
        " GPU), or pass --device=cpu."
    )


def jax_device_mib() -> float | None:
  """Peak MiB JAX's allocator held on the default device (None on CPU)."""
  import jax

  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  return None if peak is None else peak / 2**20


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


def jax_layers(batch, dtype, vjp="manual"):
  """(name, forward call, forward+backward call) of every VGG layer alone:
  jaxbp's ops, or (``vjp='autodiff'``) autodiff of their plain forwards."""
  import jax
  import jax.numpy as jnp

  from jaxbp import nn, ops

  conv2d, batch_norm, relu, max_pool2d = (
      nn.select(op, vjp)
      for op in (ops.conv2d, ops.batch_norm, ops.relu, ops.max_pool2d)
  )

  compute = jnp.bfloat16 if dtype == "bf16" else jnp.float32
  key = iter(jax.random.split(jax.random.key(1), 64))
  rand = lambda *s: jax.random.normal(next(key), s, jnp.float32).astype(compute)

  def timed(fn, *args):
    fwd = jax.jit(fn)
    # A random cotangent, passed in: a constant one (ones_like inside the
    # jit) lets XLA specialise the backward to it, as a train step cannot.
    dy = rand(*jax.eval_shape(fn, *args).shape)

    def forward_backward(dy, *a):  # Returns y too, as PyTorch's step has it.
      y, vjp = jax.vjp(fn, *a)
      return y, vjp(dy)

    grad = jax.jit(forward_backward)
    return (
        lambda: jax.block_until_ready(fwd(*args)),
        lambda: jax.block_until_ready(grad(dy, *args)),
    )

  for name, size, cin, cout in vgg_layers():
    x, w, b = rand(batch, size, size, cin), rand(3, 3, cin, cout), rand(cout)
    yield (name, *timed(conv2d, x, w, b))
  for name, size, c in vgg_norm_layers():
    x, g, bt = rand(batch, size, size, c), rand(c), rand(c)
    yield (
        name,
        *timed(lambda x, g, b: relu(batch_norm(x, g, b)), x, g, bt),
    )
  for name, size, c in vgg_pool_layers():
    yield (
        name,
        *timed(lambda x: max_pool2d(x, 3, 2, 1), rand(batch, size, size, c)),
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


def torch_on(device):
  """PyTorch's device for ``device`` ('cpu' or 'gpu') and a call that waits
  for its work; raises where PyTorch has no CUDA device.

  On the GPU, convolutions and matmuls run in TF32 as JAX's do by default,
  and cuDNN picks its algorithms by timing them (``cudnn.benchmark``), as
  XLA's autotuner does when it compiles.
  """
  import torch

  if device == "cpu":
    return torch.device("cpu"), lambda: None
  if not torch.cuda.is_available():
    raise RuntimeError(
        f"PyTorch {torch.__version__} here has no CUDA device: install a CUDA"
        " build of torch to compare on the GPU, or pass --device=cpu."
    )
  torch.backends.cudnn.benchmark = True
  torch.backends.cudnn.allow_tf32 = True
  torch.backends.cuda.matmul.allow_tf32 = True
  return torch.device("cuda"), torch.cuda.synchronize


def torch_device_mib() -> float | None:
  """Peak MiB PyTorch's allocator held on the GPU (None without CUDA)."""
  import torch

  if not torch.cuda.is_initialized():
    return None
  return torch.cuda.max_memory_allocated() / 2**20


def torch_vgg_step(mode, batch, dtype, device="cpu"):
  import torch

  where, sync = torch_on(device)
  torch.manual_seed(0)
  model = torch_vgg().to(where)
  x = torch.rand(batch, 3, 32, 32, device=where)
  labels = torch.randint(0, 10, (batch,), device=where)
  if mode == "channels_last":
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
  optimizer = torch.optim.Adam(model.parameters(), lr=LR)
  loss_fn = torch.nn.CrossEntropyLoss()
  forward = torch.compile(model) if mode == "compile" else model

  def call():
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(where.type, torch.bfloat16, enabled=dtype == "bf16"):
      loss = loss_fn(forward(x), labels)
    loss.backward()
    optimizer.step()
    sync()

  return call


def torch_layers(batch, dtype, device="cpu"):
  import torch
  import torch.nn.functional as F

  where, sync = torch_on(device)
  compute = torch.bfloat16 if dtype == "bf16" else torch.float32
  gen = torch.Generator().manual_seed(1)
  rand = lambda *s: torch.randn(*s, generator=gen).to(where, compute)

  def timed(fn, *args):
    def fwd():
      with torch.no_grad():
        fn(*args)
      sync()

    leaves = [a.detach().requires_grad_() for a in args]
    with torch.no_grad():
      dy = rand(*fn(*args).shape)  # As jax_layers: random, made once.

    def grad():
      y = fn(*leaves)
      y.backward(dy)
      for a in leaves:
        a.grad = None
      sync()

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


def _probe() -> dict:
  """JAX's default backend and device kind here, and whether PyTorch has
  CUDA (only asked where JAX runs on a GPU)."""
  import jax

  backend = jax.default_backend()
  got = {"backend": backend, "kind": jax.devices()[0].device_kind}
  if backend == "gpu":
    try:
      import torch
    except ImportError:
      got["torch_cuda"] = False
    else:
      got["torch_cuda"] = torch.cuda.is_available()
  return got


def run_worker(spec: str, device: str = "cpu", steps: int = 12) -> dict:
  """Runs one child's job (`kind:...`) on ``device`` and returns its figures."""
  kind, *rest = spec.split(":")
  if kind == "probe":
    return _probe()
  if kind == "step":
    framework, mode, batch, dtype = rest
    if framework == "jax":
      jax_on(device)
      call, memory = jax_vgg_step(mode, int(batch), dtype), jax_device_mib
    else:
      call = torch_vgg_step(mode, int(batch), dtype, device)
      memory = torch_device_mib
    times = _time_calls(call, steps)
    return {
        "seconds": statistics.median(times),
        "timed": len(times),
        "rss_mib": peak_rss_mib(),
        "device_mib": memory(),
    }
  if kind == "layers":
    framework, batch, dtype = rest
    if framework == "torch":
      layers = torch_layers(int(batch), dtype, device)
    else:
      jax_on(device)
      vjp = "autodiff" if framework == "jax-autodiff" else "manual"
      layers = jax_layers(int(batch), dtype, vjp)
    out = {}
    for name, fwd, grad in layers:
      out[name] = [statistics.median(_time_calls(f, 5)) for f in (fwd, grad)]
    return out
  if kind == "mlp":
    from benchmarks import numpy_mlp

    (framework,) = rest
    return {"seconds": numpy_mlp.train_seconds(framework)}
  raise ValueError(f"unknown worker {spec!r}")


def child(spec: str, device: str = "cpu", steps: int = 12) -> dict | None:
  """Runs `--worker=spec` in a child process; None (and why) if it failed."""
  command = [sys.executable, "-m", "benchmarks.peers", f"--worker={spec}"]
  command += [f"--device={device}", f"--steps={steps}"]
  result = subprocess.run(command, capture_output=True, text=True)
  if result.returncode != 0:
    tail = (result.stderr.strip().splitlines() or ["?"])[-1]
    print(f"  {spec}: failed ({tail[:200]})", flush=True)
    return None
  return json.loads(result.stdout.strip().splitlines()[-1])


def resolve_device(wanted: str) -> tuple[str, str]:
  """Returns (``'cpu'`` or ``'gpu'``, the device's kind) for ``--device``;
  raises, before any long work, where the GPU asked for is not there for
  both frameworks.

  ``'cpu'`` hides the GPUs from every child's JAX (``JAX_PLATFORMS``), so a
  GPU machine's CPUs can be compared; PyTorch stays on the CPU there anyway.
  """
  if wanted == "cpu":
    os.environ["JAX_PLATFORMS"] = "cpu"  # Inherited by every child.
    return "cpu", "cpu"
  got = child("probe", wanted)
  if got is None:
    raise app.UsageError(
        "benchmarks.peers: the child that finds the device failed (its last"
        " error line is above); check that python -c 'import jax, torch;"
        " print(jax.devices())' runs here, or pass --device=cpu."
    )
  if got["backend"] != "gpu":
    if wanted == "gpu":
      raise app.UsageError(
          f"--device=gpu: JAX runs on {got['backend']!r} here; install JAX"
          " for the GPU (pip install -U 'jax[cuda12]'), or pass --device=cpu."
      )
    if got["backend"] != "cpu":
      print(f"JAX runs on {got['backend']!r} here; comparing on the CPU.")
    return resolve_device("cpu")
  if not got["torch_cuda"]:
    raise app.UsageError(
        f"JAX runs on the GPU ({got['kind']}) but PyTorch here has no CUDA:"
        " install a CUDA build of torch to compare there, or pass"
        " --device=cpu."
    )
  return "gpu", got["kind"]


def _row_name(worker: str) -> str:
  return dict((w, name) for name, w in STEP_ROWS)[worker]


def _step_specs(batches, passes, device="cpu"):
  """(row, spec, passes) of every train-step child.

  Per batch and compute type the goal's two rows (hand-written and the
  device's reference) come first, one right after the other (in either
  order, as passes alternate), so that the machine's speed changes little
  between the two figures of a ratio: on a shared 2-core VM, PyTorch eager's
  batch-32 step ran at 148 and 116 images/s in two runs 25 minutes apart.
  They get every pass; the other rows (slow, or context) one. On CPU, bf16
  (context, not a goal) runs at the first batch only, for the
  ``bf16_rows``.
  """
  setup = DEVICES[device]
  goal_rows = ("jax:manual", setup.reference)
  specs = []
  for dtype in ("fp32", "bf16"):
    bf16 = dtype == "bf16"
    for batch in batches[:1] if bf16 and device == "cpu" else batches:
      rows = [row for row in STEP_ROWS if not bf16 or row[1] in setup.bf16_rows]
      rows.sort(key=lambda row: row[1] not in goal_rows)
      for name, worker in rows:
        goal = worker in goal_rows and (device == "gpu" or not bf16)
        spec = f"step:{worker}:{batch}:{dtype}"
        specs.append(((name, batch, dtype), spec, passes if goal else 1))
  return specs


def _run_specs(specs, run=child):
  """Best figures of each spec over its passes (reversed every other pass),
  each from ``run(spec)``; a spec run more than once also keeps every pass's
  seconds, in pass order (None where that pass failed), under ``"passes"``."""
  best, seconds = {}, {}
  for p in range(max(n for *_, n in specs)):
    todo = [s for s in specs if s[2] > p]
    for key, spec, _ in todo if p % 2 == 0 else todo[::-1]:
      if ONLY.value not in spec:
        continue
      print(f"pass {p + 1}: {spec}", flush=True)
      got = run(spec)
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


def _step_table(best, batches, device="cpu", peaks=None):
  """The train-step table; on a GPU with MFU (over ``peaks``, TFLOP/s per
  compute type) and peak GPU memory instead of peak RSS."""
  gpu = device == "gpu"
  reference = _row_name(DEVICES[device].reference)
  rows = [
      f"| train step | batch | compute | images/s | vs {reference} |"
      + (" MFU | peak GPU MiB |" if gpu else " peak RSS MiB |"),
      "|---|---:|---|---:|---:|---:|" + ("---:|" if gpu else ""),
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
      rows.append(
          f"| {name} | {batch} | {dtype} | failed | |" + " |" * (1 + gpu)
      )
      continue
    theirs = best.get((reference, batch, dtype))
    ratio = f"{theirs['seconds'] / got['seconds']:.2f}x" if theirs else "—"
    row = (
        f"| {name} | {batch} | {dtype} | {batch / got['seconds']:,.1f} |"
        f" {ratio} |"
    )
    if gpu:
      flops = vgg_train_flops(batch) / got["seconds"]
      mfu = f"{flops / (peaks[dtype] * 1e12):.1%}" if peaks else "—"
      mib = got.get("device_mib")
      row += f" {mfu} | {'—' if mib is None else f'{mib:,.0f}'} |"
    else:
      row += f" {got['rss_mib']:,.0f} |"
    rows.append(row)
  return rows


def _cut_short(best, steps):
  """A line naming the rows whose timed steps were cut short by the time
  budget (`_time_calls`), with how many ran; none where all ran."""
  short = [
      f"{name} at batch {batch}, {dtype} ({got['timed']})"
      for (name, batch, dtype), got in best.items()
      if got and got.get("timed", steps) < steps
  ]
  if not short:
    return []
  return [
      "",
      (
          f"Fewer timed steps than {steps}, as their steps took over"
          f" {ROW_BUDGET_S:g} s together: {', '.join(short)}."
      ),
  ]


def _goal_line(batch, dtype, device, ratio, rss):
  if device == "cpu":
    return (
        f"Goal at batch {batch} (hand-written >= 1.2x PyTorch eager, fp32;"
        f" peak RSS <= PyTorch's): {ratio:.2f}x"
        f" ({'met' if ratio >= 1.2 else 'not met'}), RSS {rss:.2f}x PyTorch's"
        f" ({'met' if rss <= 1 else 'not met'})."
    )
  setup = DEVICES[device]
  return (
      f"Goal at batch {batch}, {dtype} (hand-written >="
      f" {setup.goal:g}x {_row_name(setup.reference)}): {ratio:.2f}x"
      f" ({'met' if ratio >= setup.goal else 'not met'})."
  )


def _goals(best, batches, device="cpu"):
  """The issue's goal per batch (and, on a GPU, per compute type): on CPU
  >= 1.2x PyTorch eager, fp32, RSS <= its; on a GPU >= torch.compile; then
  the ratio of each pass, where both rows ran in every pass."""
  reference = _row_name(DEVICES[device].reference)
  lines = []
  for batch in batches:
    for dtype in ("fp32", "bf16") if device == "gpu" else ("fp32",):
      ours = best.get(("jaxbp hand-written", batch, dtype))
      theirs = best.get((reference, batch, dtype))
      if not (ours and theirs):
        continue
      ratio = theirs["seconds"] / ours["seconds"]
      rss = ours["rss_mib"] / theirs["rss_mib"]
      line = _goal_line(batch, dtype, device, ratio, rss)
      mine, them = ours.get("passes", []), theirs.get("passes", [])
      if len(mine) == len(them) > 1:
        each = ", ".join(
            f"{t / m:.2f}x" if m and t else "failed"
            for m, t in zip(mine, them, strict=True)
        )
        line += f" Pass by pass (the two back to back): {each}."
      lines.append(line)
  return lines


def _layer_table(jax_ms, torch_ms, autodiff_ms=None):
  """Per-layer rows: jaxbp vs PyTorch, and the hand-written rules' fwd+bwd
  vs autodiff of the same forwards (where ``autodiff_ms`` ran)."""
  nan = (float("nan"), float("nan"))
  autodiff_ms = autodiff_ms or {}
  rows = [
      (
          "| layer (batch {}) | jaxbp fwd ms | PyTorch fwd ms | jaxbp fwd+bwd"
          " ms | autodiff fwd+bwd ms | PyTorch fwd+bwd ms | vs PyTorch |"
          " vs autodiff |"
      ),
      "|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for name, (jf, jb) in jax_ms.items():
    tf, tb = torch_ms.get(name, nan)
    ab = autodiff_ms.get(name, nan)[1]
    rows.append(
        f"| {name} | {jf * 1e3:.1f} | {tf * 1e3:.1f} | {jb * 1e3:.1f} |"
        f" {ab * 1e3:.1f} | {tb * 1e3:.1f} | {tb / jb:.2f}x | {ab / jb:.2f}x |"
    )
  return rows


def _slower_than_autodiff(jax_ms, autodiff_ms):
  """One line naming the layers whose hand-written fwd+bwd took longer than
  autodiff's (the issue's check of the rules on a GPU)."""
  slower = [
      f"{name} ({jb * 1e3:.1f} vs {autodiff_ms[name][1] * 1e3:.1f} ms)"
      for name, (_, jb) in jax_ms.items()
      if name in autodiff_ms and jb > autodiff_ms[name][1]
  ]
  return (
      "Layers whose hand-written forward+backward is slower than autodiff of"
      f" the same forward: {', '.join(slower) or 'none'}."
  )


def _step_text(device, kind, steps, passes, peaks):
  """The paragraph above the step table."""
  reference = _row_name(DEVICES[device].reference)
  text = (
      "The seeds' VGG (Table 1, 9.2M parameters) Adam train step on random"
      " 32x32x3 images, each row in its own child process (its machine"
      f" alone; peak RSS its own), median of {steps} timed steps after 3"
      " warm-up steps (fewer where slow, as said below); the"
      f" {reference} and jaxbp hand-written rows are the"
      f" best of {passes} pass{'es' if passes > 1 else ''} (order reversed"
      " every other pass), the"
      " other rows one pass. PyTorch rows use `torch.optim.Adam`,"
      " `CrossEntropyLoss`, NCHW unless noted; bf16 is `torch.autocast`"
      " there and the models' `dtype=bfloat16` (fp32 parameters) in jaxbp."
  )
  if device == "cpu":
    return text
  peak = (
      f"TF32 {peaks['fp32']:g} and bf16 {peaks['bf16']:g} TFLOP/s"
      if peaks
      else "not known for this GPU: pass --peak_tflops"
  )
  return text + (
      f" On the GPU ({kind}): fp32 rows run convolutions and matmuls in TF32"
      " (JAX's default precision there; PyTorch with `allow_tf32` and"
      " `cudnn.benchmark`); each step ends by waiting for the device. MFU is"
      f" {vgg_train_flops(1) / 1e9:.3f} GFLOP per image (`vgg_train_flops`:"
      " convolutions and the linear layer, forward and backward) over the"
      f" device's dense peak ({peak}); peak GPU memory is what each"
      " framework's allocator held at most."
  )


def _layer_passes(batch, run, passes):
  """Each framework's per-layer [fwd, fwd+bwd] seconds, the least over
  ``passes`` rounds of its child (order reversed every other round, so a
  slow spell of the machine does not land on one framework's layers)."""
  got = {}
  frameworks = ("jax", "jax-autodiff", "torch")
  for p in range(passes):
    for framework in frameworks if p % 2 == 0 else frameworks[::-1]:
      spec = f"layers:{framework}:{batch}:fp32"
      if ONLY.value not in spec:
        continue
      print(f"pass {p + 1}: {spec}", flush=True)
      best = got.setdefault(framework, {})
      for name, times in (run(spec) or {}).items():
        old = best.get(name, times)
        best[name] = [min(a, b) for a, b in zip(old, times, strict=True)]
  return got


def _layer_rows(batch, device, run, passes=1):
  """The per-layer section's lines (empty where its children did not run)."""
  got = _layer_passes(batch, run, passes)
  if not (got.get("jax") and got.get("torch")):
    return []
  table = _layer_table(got["jax"], got["torch"], got.get("jax-autodiff"))
  table[0] = table[0].format(batch)
  lines = [
      "",
      (
          f"Each VGG layer alone on the {device.upper()}, fp32, median of 5"
          f" calls, the least over {passes} pass{'es' if passes > 1 else ''} of"
          " each framework's child: jaxbp's op (its `choose_impl` pick for"
          " convolutions) under `jax.jit` against `torch.nn.functional`, and"
          " autodiff of the op's plain forward (`ops.plain`); fwd+bwd is the"
          " forward and the gradients of every input (a random cotangent, made"
          " once and passed in). Ratio > 1: jaxbp faster."
      ),
      "",
      *table,
  ]
  if got.get("jax-autodiff"):
    lines += ["", _slower_than_autodiff(got["jax"], got["jax-autodiff"])]
  return lines


def _mlp_rows(run):
  """The MLP protocol's lines (CPU only; empty where a child failed)."""
  mlp = {}
  for framework in ("jaxbp", "numpy", "numpy32"):
    if ONLY.value in f"mlp:{framework}":
      print(f"mlp:{framework}", flush=True)
      mlp[framework] = run(f"mlp:{framework}")
  if not (mlp and all(mlp.values())):
    return []
  j, n64, n32 = (mlp[k]["seconds"] for k in ("jaxbp", "numpy", "numpy32"))
  return [
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


def main(argv):
  del argv
  if WORKER.value:
    got = run_worker(WORKER.value, DEVICE.value, STEPS.value or 12)
    print(json.dumps(got), flush=True)
    return
  device, kind = resolve_device(DEVICE.value)
  setup = DEVICES[device]
  peaks = peak_tflops(kind, PEAK.value) if device == "gpu" else None
  if QUICK.value:
    batches, steps = [8], 2
  else:
    batches = [int(b) for b in BATCHES.value or setup.batches]
    steps = STEPS.value or setup.steps
  run = functools.partial(child, device=device, steps=steps)
  best = _run_specs(_step_specs(batches, PASSES.value, device), run)
  layers = _layer_rows(batches[0], device, run, PASSES.value)
  mlp = _mlp_rows(run) if device == "cpu" and not QUICK.value else []
  import torch

  from benchmarks import _timing

  title = "jaxbp vs PyTorch" + (
      " (and the seeds' NumPy MLP)" if device == "cpu" else " on a GPU"
  )
  threads = (
      f"{torch.get_num_threads()} threads"
      if device == "cpu"
      else f"CUDA {torch.version.cuda}"
  )
  command = " ".join(["python -m benchmarks.peers", *sys.argv[1:]])
  note = "`--quick` run: checks the script, not figures." if QUICK.value else ""
  text = [
      f"## Peers: {title}",
      "",
      _step_text(device, kind, steps, PASSES.value, peaks),
      "",
      *_step_table(best, batches, device, peaks),
      *_cut_short(best, steps),
      "",
      *_goals(best, batches, device),
      *layers,
      *mlp,
      "",
      note,
      (
          f"Command: `{command}`. Machine: {_timing.machine()} PyTorch"
          f" {torch.__version__}, {threads}."
      ),
  ]
  _timing.write_section(setup.section, "\n".join(text))


if __name__ == "__main__":
  app.run(main)
