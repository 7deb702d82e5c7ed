"""The seeds' 2019 MLP protocol in NumPy, as the assignment writes it, and jaxbp's.

The 2019 assignment's NumPy MLP: 3072-100-10, LeakyReLU (slope 0.02),
softmax cross-entropy, weights N(0, 1e-4) and zero biases, SGD lr 2e-3,
batch 200 sampled with replacement, 1,500 steps; NumPy computes in float64
unless told otherwise. The peer below is that, written as students write it
(one class per layer, forward caching its input, backward returning the
input gradient). Both sides train on the same in-memory CIFAR-shaped random
data: the time is training only, not image decoding.

``train_seconds('numpy')`` (float64, the seeds'), ``('numpy32')`` and
``('jaxbp')`` (float32, jit-compiled step, compile excluded) return the wall
time of the 1,500 steps; ``benchmarks.peers`` runs each in its own process.
"""

import time

import numpy as np

STEPS, BATCH, LR = 1500, 200, 2e-3
SIZES = (3072, 100, 10)
SLOPE = 0.02
EXAMPLES = (
    10_000  # Batches are sampled; the pool size does not change the time.
)


def data(dtype=np.float32):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((EXAMPLES, SIZES[0])).astype(dtype)
  return x, rng.integers(0, SIZES[-1], EXAMPLES)


class Linear:

  def __init__(self, n_in, n_out, rng, dtype):
    self.w = rng.normal(0.0, 1e-4, (n_in, n_out)).astype(dtype)
    self.b = np.zeros(n_out, dtype)

  def forward(self, x):
    self.x = x
    return x @ self.w + self.b

  def backward(self, dout):
    self.dw = self.x.T @ dout
    self.db = dout.sum(0)
    return dout @ self.w.T


class LeakyReLU:

  def forward(self, x):
    self.x = x
    return np.where(x > 0, x, SLOPE * x)

  def backward(self, dout):
    return np.where(self.x > 0, dout, SLOPE * dout)


class SoftmaxCrossEntropy:

  def forward(self, z, labels):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    self.p = e / e.sum(1, keepdims=True)
    self.labels = labels
    return -np.log(self.p[np.arange(len(labels)), labels]).mean()

  def backward(self):
    d = self.p.copy()
    d[np.arange(len(self.labels)), self.labels] -= 1
    return d / len(self.labels)


def numpy_seconds(dtype) -> float:
  x, y = data(dtype)
  rng = np.random.default_rng(1)
  layers = [
      Linear(SIZES[0], SIZES[1], rng, dtype),
      LeakyReLU(),
      Linear(SIZES[1], SIZES[2], rng, dtype),
  ]
  loss = SoftmaxCrossEntropy()
  began = time.perf_counter()
  for _ in range(STEPS):
    idx = rng.integers(0, EXAMPLES, BATCH)
    h = x[idx]
    for layer in layers:
      h = layer.forward(h)
    loss.forward(h, y[idx])
    d = loss.backward()
    for layer in reversed(layers):
      d = layer.backward(d)
    for layer in layers[::2]:
      layer.w -= LR * layer.dw
      layer.b -= LR * layer.db
  return time.perf_counter() - began


def jaxbp_seconds() -> float:
  import jax
  import jax.numpy as jnp
  import optax
  from flax import nnx

  from jaxbp import models, ops

  x, y = (jnp.asarray(a) for a in data())
  model = models.MLP(
      SIZES[0],
      SIZES[1:-1],
      SIZES[-1],
      negative_slope=SLOPE,
      kernel_init="normal",
      init_std=1e-4,
      rngs=nnx.Rngs(0),
  )
  optimizer = nnx.Optimizer(model, optax.sgd(LR), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))

  def step(state, key):
    model, optimizer = nnx.merge(graphdef, state)
    idx = jax.random.randint(key, (BATCH,), 0, EXAMPLES)
    loss = lambda m: ops.softmax_cross_entropy(m(x[idx]), y[idx])
    value, grads = nnx.value_and_grad(loss)(model)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), value

  keys = jax.random.split(jax.random.key(1), STEPS)
  step = jax.jit(step, donate_argnums=0)
  warm = jax.tree.map(jnp.copy, state)
  jax.block_until_ready(step(warm, keys[0]))  # Compile, off the clock.
  began = time.perf_counter()
  for key in keys:
    state, value = step(state, key)
  value.block_until_ready()
  return time.perf_counter() - began


def train_seconds(framework: str) -> float:
  if framework == "numpy":
    return numpy_seconds(np.float64)
  if framework == "numpy32":
    return numpy_seconds(np.float32)
  if framework == "jaxbp":
    return jaxbp_seconds()
  raise ValueError(f"unknown MLP framework {framework!r}")
