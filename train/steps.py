"""The jit-compiled train and evaluation steps, data-parallel over a mesh."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxbp import ops
from train import input_pipeline


def zero_sums() -> dict:
  """Running train sums since the last evaluation (saved with checkpoints)."""
  return {
      'loss': np.zeros((), np.float32),
      'correct': np.zeros((), np.int32),
      'steps': np.zeros((), np.int32),
      # First step whose loss was NaN or Inf, or -1; checked on the host.
      'nonfinite_step': np.full((), -1, np.int32),
  }


def make_train_step(config, graphdef, rng_state, normalize, mesh, num_classes):
  """Returns step(state, sums, step, images, labels) -> (state, sums).

  Everything a step needs happens on device inside one compiled function:
  gather the batch of `input_pipeline.batch_indices`, normalize, augment,
  forward and backward, optimizer update. The batch is sharded over the mesh's
  'data' axis and the state replicated, so XLA inserts the gradient all-reduce
  and batch-norm statistics are over the global batch.
  """
  batch_sharding = NamedSharding(mesh, P('data'))

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def jitted_step(state, sums, step, images, labels, rng_state):
    model, optimizer = nnx.merge(graphdef, rng_state, state)
    key = jax.random.fold_in(jax.random.key(config.seed), step)
    augment_key, dropout_key = jax.random.split(key)
    nnx.reseed(model, dropout=dropout_key)
    idx = input_pipeline.batch_indices(
        config.seed, step, config.batch_size, images.shape[0]
    )
    x = jax.lax.with_sharding_constraint(images[idx], batch_sharding)
    y = jax.lax.with_sharding_constraint(labels[idx], batch_sharding)
    x = input_pipeline.augment(
        augment_key,
        normalize(x),
        config.random_crop_padding,
        config.random_flip,
    )
    targets = y
    if config.label_smoothing:
      targets = optax.smooth_labels(
          jax.nn.one_hot(y, num_classes), config.label_smoothing
      )

    def loss_fn(model):
      # bf16 models still hand float32 logits to the softmax and the loss.
      logits = model(x).astype(jnp.float32)
      return ops.softmax_cross_entropy(logits, targets), logits

    (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    finite = jnp.isfinite(loss)
    first_bad = jnp.where(
        (sums['nonfinite_step'] < 0) & ~finite, step + 1, sums['nonfinite_step']
    )
    sums = {
        'loss': sums['loss'] + loss,
        'correct': sums['correct'] + jnp.sum(jnp.argmax(logits, -1) == y),
        'steps': sums['steps'] + 1,
        'nonfinite_step': first_bad,
    }
    _, _, state = nnx.split((model, optimizer), nnx.RngState, ...)
    return state, sums

  def train_step(state, sums, step, images, labels):
    # The dropout keys are reseeded from (seed, step) inside the step, which
    # NNX allows only for state that enters the traced function as an input.
    return jitted_step(state, sums, step, images, labels, rng_state)

  return train_step


def pad_for_eval(images, labels, batch_size):
  """Pads a split to whole batches; padded labels are -1 and masked out."""
  pad = -len(labels) % batch_size
  images = np.concatenate(
      [images, np.zeros((pad, *images.shape[1:]), images.dtype)]
  )
  labels = np.concatenate([labels, np.full((pad,), -1, labels.dtype)])
  return images, labels


def make_eval_step(config, graphdef, rng_state, normalize, mesh):
  """Returns evaluate(state, images, labels) -> (mean loss, accuracy).

  One compiled scan over the padded split in batches of
  `config.eval_batch_size`; the padding is masked, so each example counts once.
  """
  batch_sharding = NamedSharding(mesh, P('data'))
  size = config.eval_batch_size

  @jax.jit
  def evaluate(state, images, labels):
    model, _ = nnx.merge(graphdef, rng_state, state)

    def body(totals, i):
      x = jax.lax.dynamic_slice_in_dim(images, i * size, size)
      y = jax.lax.dynamic_slice_in_dim(labels, i * size, size)
      x = normalize(jax.lax.with_sharding_constraint(x, batch_sharding))
      logits = model(x).astype(jnp.float32)
      mask = y >= 0
      loss = optax.softmax_cross_entropy_with_integer_labels(
          logits, jnp.maximum(y, 0)
      )
      correct = (jnp.argmax(logits, -1) == y) & mask
      return (
          totals[0] + jnp.sum(jnp.where(mask, loss, 0.0)),
          totals[1] + jnp.sum(correct),
      ), None

    num_batches = images.shape[0] // size
    (loss, correct), _ = jax.lax.scan(
        body,
        (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)),
        jnp.arange(num_batches),
    )
    count = jnp.sum(labels >= 0)
    return loss / count, correct / count

  return evaluate
