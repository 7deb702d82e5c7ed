"""The benchmarks' peers compute what they claim (no timing here)."""

import importlib.util
import math
import os
import pathlib
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import app

from benchmarks import numpy_mlp, peers
from tests.train.conftest import subprocess_env


def test_numpy_mlp_peer_backward_matches_autodiff(x64):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((6, 12))
  labels = rng.integers(0, 4, 6)
  layers = [
      numpy_mlp.Linear(12, 5, rng, np.float64),
      numpy_mlp.LeakyReLU(),
      numpy_mlp.Linear(5, 4, rng, np.float64),
  ]
  for layer in layers[::2]:  # N(0, 1e-4) would leave the ReLU almost linear.
    layer.w = rng.standard_normal(layer.w.shape)
    layer.b = rng.standard_normal(layer.b.shape)
  loss = numpy_mlp.SoftmaxCrossEntropy()
  h = x
  for layer in layers:
    h = layer.forward(h)
  value = loss.forward(h, labels)
  d = loss.backward()
  for layer in reversed(layers):
    d = layer.backward(d)

  def reference(params, x):
    (w1, b1), (w2, b2) = params
    z = x @ w1 + b1
    z = jnp.where(z > 0, z, numpy_mlp.SLOPE * z)
    logp = jax.nn.log_softmax(z @ w2 + b2)
    return -jnp.mean(logp[jnp.arange(6), labels])

  params = [(layer.w, layer.b) for layer in layers[::2]]
  want, (grads, dx) = jax.value_and_grad(reference, (0, 1))(params, x)
  np.testing.assert_allclose(value, want, rtol=1e-12)
  np.testing.assert_allclose(d, dx, rtol=1e-10, atol=1e-12)
  for layer, (dw, db) in zip(layers[::2], grads, strict=True):
    np.testing.assert_allclose(layer.dw, dw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.db, db, rtol=1e-10, atol=1e-12)


def test_vgg_layer_lists_cover_each_distinct_layer_once():
  convs = peers.vgg_layers()
  assert [(s, i, o) for _, s, i, o in convs] == [
      (32, 3, 64),
      (16, 64, 128),
      (8, 128, 256),
      (8, 256, 256),
      (4, 256, 512),
      (4, 512, 512),
      (2, 512, 512),
  ]
  assert len(peers.vgg_norm_layers()) == len(peers.vgg_pool_layers()) == 5


def test_torch_vgg_matches_jaxbp_vgg_parameter_count():
  torch = pytest.importorskip("torch")  # The `bench` extra; CI has none.
  from flax import nnx

  from jaxbp import models

  ours = models.VGG(rngs=nnx.Rngs(0))
  count = sum(p.size for p in jax.tree.leaves(nnx.state(ours, nnx.Param)))
  theirs = sum(p.numel() for p in peers.torch_vgg().parameters())
  assert count == theirs == 9_231_114
  assert peers.torch_vgg()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_goal_lines_name_the_ratio_and_whether_met():
  best = {
      ("jaxbp hand-written", 32, "fp32"): {"seconds": 1.0, "rss_mib": 500},
      ("PyTorch eager", 32, "fp32"): {"seconds": 1.3, "rss_mib": 400},
  }
  [line] = peers._goals(best, [32, 128])
  assert "1.30x (met)" in line and "RSS 1.25x PyTorch's (not met)" in line
  assert "Pass by pass" not in line  # One pass each: no spread to show.
  best[("jaxbp hand-written", 32, "fp32")]["passes"] = [1.2, 1.0, 1.1]
  best[("PyTorch eager", 32, "fp32")]["passes"] = [1.3, 1.3, 1.1]
  [line] = peers._goals(best, [32])
  assert line.endswith(
      "Pass by pass (the two back to back): 1.08x, 1.30x, 1.00x."
  )
  best[("PyTorch eager", 32, "fp32")]["passes"] = [1.3, None, 1.1]
  [line] = peers._goals(best, [32])
  assert line.endswith("(the two back to back): 1.08x, failed, 1.00x.")


def test_run_specs_keeps_the_best_pass_and_every_passs_seconds(monkeypatch):
  runs = iter([{"seconds": s, "rss_mib": 1.0} for s in (3.0, 2.0, 1.0, 4.0)])
  monkeypatch.setattr(peers, "ONLY", types.SimpleNamespace(value=""))
  specs = [("a", "step:a", 2), ("b", "step:b", 2)]
  best = peers._run_specs(specs, lambda spec: next(runs))
  # Pass 1 runs a, b; pass 2 runs them reversed: b, a.
  assert best["a"] == {"seconds": 3.0, "rss_mib": 1.0, "passes": [3.0, 4.0]}
  assert best["b"] == {"seconds": 1.0, "rss_mib": 1.0, "passes": [2.0, 1.0]}
  # A failed pass keeps its place, so the two rows' passes stay paired.
  later = iter([None, {"seconds": 2.0, "rss_mib": 1.0}, {"seconds": 1.0}])
  specs = [("a", "step:a", 2), ("b", "step:b", 1)]
  best = peers._run_specs(specs, lambda spec: next(later))
  assert best["a"] == {"seconds": 1.0, "passes": [None, 1.0]}
  assert best["b"] == {"seconds": 2.0, "rss_mib": 1.0}


def test_jax_step_compiled_before_its_state_trains_that_state():
  # The step compiles against the state's shapes and then runs on the state
  # made after it: its first loss is the fresh model's, and Adam lowers it.
  from flax import nnx

  from jaxbp import models, ops

  step = peers.jax_vgg_step("manual", 4, "fp32")
  losses = [float(step()) for _ in range(3)]
  kx, ky = jax.random.split(jax.random.key(0))
  x = jax.random.uniform(kx, (4, 32, 32, 3), jnp.float32)
  labels = jax.random.randint(ky, (4,), 0, 10)
  fresh = models.VGG(rngs=nnx.Rngs(0))
  want = ops.softmax_cross_entropy(fresh(x), labels)
  np.testing.assert_allclose(losses[0], want, rtol=1e-5)
  assert losses[2] < losses[1] < losses[0]


def test_goal_rows_run_back_to_back_every_pass_and_the_table_keeps_its_order():
  specs = peers._step_specs([128, 32], passes=3)
  workers = [spec for _, spec, _ in specs]
  for batch in (128, 32):
    manual = workers.index(f"step:jax:manual:{batch}:fp32")
    assert workers[manual + 1] == f"step:torch:eager:{batch}:fp32"
    assert specs[manual][2] == specs[manual + 1][2] == 3
  assert {n for key, _, n in specs if key[0] == "torch.compile"} == {1}
  best = {key: {"seconds": 1.0, "rss_mib": 1.0} for key, _, _ in specs}
  rows = [
      line.split(" | ")[0][2:]
      for line in peers._step_table(best, [128, 32])[2:]
  ]
  fp32 = [name for name, _ in peers.STEP_ROWS]
  assert rows == fp32 + fp32 + ["jaxbp hand-written", "PyTorch eager"]


def _model_flops(jaxpr) -> int:
  """2 x the multiply-adds of every convolution (each kernel tap, padding
  included) and dot in ``jaxpr`` and the jaxprs inside it."""
  total = 0
  for eqn in jaxpr.eqns:
    for param in eqn.params.values():
      for sub in param if isinstance(param, (list, tuple)) else [param]:
        sub = getattr(sub, "jaxpr", sub)  # A ClosedJaxpr's Jaxpr.
        if hasattr(sub, "eqns"):
          total += _model_flops(sub)
    out = eqn.outvars[0].aval.shape if eqn.outvars else ()
    if eqn.primitive.name == "conv_general_dilated":
      rhs = eqn.invars[1].aval.shape
      out_features = rhs[eqn.params["dimension_numbers"].rhs_spec[0]]
      total += 2 * math.prod(out) * math.prod(rhs) // out_features
    elif eqn.primitive.name == "dot_general":
      (contracting, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      total += 2 * math.prod(out) * math.prod(lhs[d] for d in contracting)
  return total


@pytest.mark.parametrize("batch", [1, 3])
def test_vgg_train_flops_are_what_autodiff_of_the_vgg_computes(batch):
  # The seeds' VGG in plain lax; jax.grad of its loss with respect to the
  # parameters (not the data) emits each conv's and the linear layer's
  # forward, kernel gradient and input gradient but the first conv's.
  def loss(params, x, labels):
    *convs, (w, b) = params
    for kernel in convs:
      if kernel is None:
        x = jax.lax.reduce_window(
            x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
            ((0, 0), (1, 1), (1, 1), (0, 0)),
        )  # fmt: skip
        continue
      x = jax.lax.conv_general_dilated(
          x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
      )
      x = jax.nn.relu((x - x.mean((0, 1, 2))) * jax.lax.rsqrt(x.var() + 1))
    logits = x.reshape(len(x), -1) @ w + b
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(x)), labels])

  spec = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  params, width = [], 3
  for group in peers.VGG_TABLE1:
    for features in group:
      params.append(spec(3, 3, width, features))
      width = features
    params.append(None)  # The max-pool.
  params.append((spec(width, 10), spec(10)))
  labels = jax.ShapeDtypeStruct((batch,), jnp.int32)
  jaxpr = jax.make_jaxpr(jax.grad(loss))(params, spec(batch, 32, 32, 3), labels)
  assert _model_flops(jaxpr.jaxpr) == peers.vgg_train_flops(batch)
  assert peers.vgg_train_flops(batch) == batch * 913_078_272


def test_vgg_train_flops_are_what_pytorch_counts():
  torch = pytest.importorskip("torch")  # The `bench` extra; CI has none.
  from torch.utils.flop_counter import FlopCounterMode

  model = peers.torch_vgg()
  x, labels = torch.rand(2, 3, 32, 32), torch.tensor([1, 7])
  with FlopCounterMode(display=False) as counter:
    torch.nn.functional.cross_entropy(model(x), labels).backward()
  assert counter.get_total_flops() == peers.vgg_train_flops(2)


@pytest.mark.parametrize(
    "kind, want",
    [
        ("NVIDIA H100 80GB HBM3", (494.7, 989.4)),
        ("NVIDIA H200", (494.7, 989.4)),
        ("NVIDIA H100 PCIe", (378.0, 756.0)),
        ("NVIDIA A100-SXM4-40GB", (156.0, 312.0)),
        ("NVIDIA L4", (60.0, 121.0)),
        ("NVIDIA L40S", None),  # Not an L4.
        ("NVIDIA H100 NVL", None),
        ("Tesla T4", None),
    ],
)
def test_peak_tflops_by_device_name(kind, want):
  got = peers.peak_tflops(kind)
  assert got == (want and {"fp32": want[0], "bf16": want[1]})


def test_peak_tflops_given_wins_and_must_be_two_numbers():
  given = peers.peak_tflops("Tesla T4", ["8.1", "65"])
  assert given == {"fp32": 8.1, "bf16": 65.0}
  with pytest.raises(ValueError, match="two numbers, TF32 and bf16"):
    peers.peak_tflops("NVIDIA H200", ["989.4"])


def test_gpu_runs_every_row_in_both_compute_types_against_torch_compile():
  specs = peers._step_specs([512], passes=2, device="gpu")
  workers = [spec for _, spec, _ in specs]
  for dtype in ("fp32", "bf16"):
    ours = workers.index(f"step:jax:manual:512:{dtype}")
    assert workers[ours + 1] == f"step:torch:compile:512:{dtype}"
    assert specs[ours][2] == specs[ours + 1][2] == 2
    rows = {key[0] for key, _, _ in specs if key[2] == dtype}
    assert rows == {name for name, _ in peers.STEP_ROWS}
  seconds = 512 * 913_078_272 / (0.25 * 494.7e12)  # 25% of an H100's TF32.
  best = {key: {"seconds": 1.0, "rss_mib": 1.0} for key, _, _ in specs}
  best[("jaxbp hand-written", 512, "fp32")] = {
      "seconds": seconds,
      "rss_mib": 900.0,
      "device_mib": 2048.0,
  }
  best[("torch.compile", 512, "bf16")] = None
  table = peers._step_table(best, [512], "gpu", peers.peak_tflops("H100"))
  assert "| vs torch.compile | MFU | peak GPU MiB |" in table[0]
  assert all(row.count("|") == table[0].count("|") for row in table)
  [ours] = [
      r for r in table if r.startswith("| jaxbp hand-written | 512 | fp32")
  ]
  assert ours.endswith(f"| {1 / seconds:.2f}x | 25.0% | 2,048 |")
  lines = peers._goals(best, [512], "gpu")
  assert lines == [
      "Goal at batch 512, fp32 (hand-written >= 1x torch.compile):"
      f" {1 / seconds:.2f}x (met)."
  ]  # The bf16 reference failed: no goal line to draw from it.


def test_layer_table_compares_each_rule_with_pytorch_and_autodiff():
  ours = {"conv a": [0.001, 0.004], "max-pool b": [0.001, 0.002]}
  theirs = {"conv a": [0.002, 0.008], "max-pool b": [0.001, 0.001]}
  autodiff = {"conv a": [0.001, 0.003], "max-pool b": [0.001, 0.004]}
  table = peers._layer_table(ours, theirs, autodiff)
  assert table[2].endswith("| 4.0 | 3.0 | 8.0 | 2.00x | 0.75x |")
  assert table[3].endswith("| 2.0 | 4.0 | 1.0 | 0.50x | 2.00x |")
  line = peers._slower_than_autodiff(ours, autodiff)
  assert line.endswith("same forward: conv a (4.0 vs 3.0 ms).")
  assert peers._slower_than_autodiff(ours, {}).endswith(": none.")


def test_device_is_resolved_before_any_long_work(monkeypatch):
  probes = []

  def probe(found):
    def child(spec, device):
      probes.append((spec, device))
      return found

    monkeypatch.setattr(peers, "child", child)

  monkeypatch.setenv("JAX_PLATFORMS", "")
  probe({"backend": "cpu", "kind": "cpu"})
  with pytest.raises(app.UsageError, match="--device=gpu: JAX runs on 'cpu'"):
    peers.resolve_device("gpu")
  assert peers.resolve_device("auto") == ("cpu", "cpu")
  assert os.environ["JAX_PLATFORMS"] == "cpu"  # What the children inherit.
  monkeypatch.setenv("JAX_PLATFORMS", "")
  probe({"backend": "tpu", "kind": "TPU v5 lite"})  # PyTorch runs no TPU.
  assert peers.resolve_device("auto") == ("cpu", "cpu")
  assert os.environ["JAX_PLATFORMS"] == "cpu"
  probe({"backend": "gpu", "kind": "NVIDIA H200", "torch_cuda": False})
  with pytest.raises(app.UsageError, match="PyTorch here has no CUDA"):
    peers.resolve_device("auto")
  probe({"backend": "gpu", "kind": "NVIDIA H200", "torch_cuda": True})
  assert peers.resolve_device("gpu") == ("gpu", "NVIDIA H200")
  assert probes[-1] == ("probe", "gpu")


def test_a_child_asked_for_another_device_than_jaxs_says_so():
  with pytest.raises(RuntimeError, match=r"JAX runs on 'cpu' here, not 'gpu'"):
    peers.run_worker("step:jax:manual:2:fp32", device="gpu", steps=1)


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a GPU")
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_gpu_step_children_report_time_and_device_memory(dtype):
  got = peers.run_worker(f"step:jax:manual:8:{dtype}", device="gpu", steps=2)
  assert got["seconds"] > 0 and got["device_mib"] > 0
  if importlib.util.find_spec("torch"):
    import torch

    if torch.cuda.is_available():
      spec = f"step:torch:eager:8:{dtype}"
      got = peers.run_worker(spec, device="gpu", steps=2)
      assert got["seconds"] > 0 and got["device_mib"] > 0


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--batches=128,3x", "--batches takes positive whole numbers"),
        ("--batches=0", "--batches takes positive whole numbers"),
        ("--peak_tflops=989.4", "--peak_tflops takes two positive numbers"),
        ("--passes=0", "0 is not a positive integer"),
    ],
)
def test_bad_flags_stop_the_run_before_any_child_with_the_way_out(
    flag, message
):
  command = [sys.executable, "-m", "benchmarks.peers", flag]
  root = pathlib.Path(__file__).resolve().parent.parent
  done = subprocess.run(
      command, capture_output=True, text=True, cwd=root, timeout=60
  )
  assert done.returncode != 0
  assert message in done.stderr and "pass 1" not in done.stdout


def _clocked_calls(monkeypatch, seconds):
  """A call whose i-th run takes ``seconds[i]`` on a fake clock; returns the
  call and the list of runs made."""
  now, runs = [0.0], []
  monkeypatch.setattr(peers.time, "perf_counter", lambda: now[0])

  def call():
    now[0] += seconds[len(runs)]
    runs.append(now[0])

  return call, runs


def test_time_calls_times_every_step_where_they_are_quick(monkeypatch):
  call, runs = _clocked_calls(monkeypatch, [30.0] + [0.5] * 20)
  times = peers._time_calls(call, steps=12, warmup=3, budget=60.0)
  assert times == [0.5] * 12 and len(runs) == 15  # A slow compile is fine.


def test_time_calls_cuts_a_slow_rows_warmup_and_steps_short(monkeypatch):
  call, runs = _clocked_calls(monkeypatch, [40.0] + [37.0] * 20)
  times = peers._time_calls(call, steps=12, warmup=3, budget=60.0)
  # Warm-up: the compile and one more; timed: 3 (their sum passed 60 s).
  assert times == [37.0] * 3 and len(runs) == 5
  call, runs = _clocked_calls(monkeypatch, [1.0] * 3 + [25.0] * 20)
  assert peers._time_calls(call, steps=12, warmup=3, budget=60.0) == [25.0] * 3
  call, runs = _clocked_calls(monkeypatch, [1.0] * 3 + [25.0] * 20)
  assert peers._time_calls(call, steps=2, warmup=3, budget=60.0) == [25.0] * 2


def test_rows_cut_short_are_named_with_their_count():
  best = {
      ("PyTorch eager", 128, "bf16"): {"seconds": 37.0, "timed": 3},
      ("PyTorch eager", 128, "fp32"): {"seconds": 1.0, "timed": 12},
      ("jaxbp autodiff", 128, "fp32"): None,
  }
  assert peers._cut_short(best, 12) == [
      "",
      (
          "Fewer timed steps than 12, as their steps took over 60 s together:"
          " PyTorch eager at batch 128, bf16 (3)."
      ),
  ]
  del best[("PyTorch eager", 128, "bf16")]
  assert peers._cut_short(best, 12) == []


def test_a_failed_device_probe_names_the_way_out(monkeypatch):
  monkeypatch.setattr(peers, "child", lambda spec, device: None)
  with pytest.raises(app.UsageError, match=r"print\(jax.devices\(\)\)' runs"):
    peers.resolve_device("auto")


def test_jax_children_run_under_jaxbps_xla_flags():
  # jax_on asks JAX for its backend, which starts it: jaxbp must be imported
  # before, or its XLA:CPU flags never apply to the jaxbp rows.
  from jaxbp import _xla_flags

  version = _xla_flags._jaxlib_version()
  want = [f"{f}={v}" for f, v, since in _xla_flags.DEFAULTS if version >= since]
  code = (
      "import os; from benchmarks import peers; peers.jax_on('cpu');"
      " print(os.environ.get('XLA_FLAGS', ''))"
  )
  done = subprocess.run(
      [sys.executable, "-c", code],
      env=subprocess_env(JAX_PLATFORMS="cpu", JAXBP_XLA_FLAGS="1"),
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.split() == want


def test_layer_passes_keep_each_layers_least_time_and_reverse_order(
    monkeypatch,
):
  monkeypatch.setattr(peers, "ONLY", types.SimpleNamespace(value=""))
  order, times = [], {
      "jax": [{"conv": [2.0, 5.0]}, {"conv": [3.0, 4.0]}],
      "jax-autodiff": [{"conv": [1.0, 9.0]}, None],  # Its 2nd pass failed.
      "torch": [{"conv": [4.0, 6.0]}, {"conv": [1.0, 7.0]}],
  }

  def run(spec):
    framework = spec.split(":")[1]
    order.append(framework)
    return times[framework][order.count(framework) - 1]

  got = peers._layer_passes(128, run, passes=2)
  assert order == ["jax", "jax-autodiff", "torch"] * 1 + [
      "torch",
      "jax-autodiff",
      "jax",
  ]
  assert got == {
      "jax": {"conv": [2.0, 4.0]},
      "jax-autodiff": {"conv": [1.0, 9.0]},
      "torch": {"conv": [1.0, 6.0]},
  }
