"""The benchmarks' peers compute what they claim (no timing here)."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import numpy_mlp, peers


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
  monkeypatch.setattr(peers, "child", lambda spec: next(runs))
  monkeypatch.setattr(peers, "ONLY", types.SimpleNamespace(value=""))
  specs = [("a", "step:a", 2), ("b", "step:b", 2)]
  best = peers._run_specs(specs)
  # Pass 1 runs a, b; pass 2 runs them reversed: b, a.
  assert best["a"] == {"seconds": 3.0, "rss_mib": 1.0, "passes": [3.0, 4.0]}
  assert best["b"] == {"seconds": 1.0, "rss_mib": 1.0, "passes": [2.0, 1.0]}
  # A failed pass keeps its place, so the two rows' passes stay paired.
  later = iter([None, {"seconds": 2.0, "rss_mib": 1.0}, {"seconds": 1.0}])
  monkeypatch.setattr(peers, "child", lambda spec: next(later))
  best = peers._run_specs([("a", "step:a", 2), ("b", "step:b", 1)])
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
