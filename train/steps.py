"""The jit-compiled train and evaluation steps, data-parallel over a mesh.

Both are module-level `jax.jit` functions of arrays, with what they read from
the config in a small frozen `Hparams` and the network's fixed parts in a
`Network`, both static. The model and optimizer travel as NNX state: split
once by the caller, merged inside the step (Flax's functional API, which costs
no Python graph traversal per step).
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding

from jaxbp import nn, ops
from train import distributed, input_pipeline


@dataclasses.dataclass(frozen=True)
class Hparams:
  """The config values the steps read; static (hashable) under jit."""

  seed: int
  batch_size: int
  eval_batch_size: int
  num_classes: int
  vjp: str = 'manual'  # the loss's backward follows the model's
  label_smoothing: float = 0.0
  random_crop_padding: int = 0
  random_flip: bool = False
  batch_order: str = 'shuffle'  # see input_pipeline.batch_indices
  loss_reduction: str = 'mean'  # see `train_loss`

  @classmethod
  def from_config(cls, config, num_classes: int) -> 'Hparams':
    """Reads the fields from a validated config (vjp from `config.model`)."""
    names = [f.name for f in dataclasses.fields(cls)]
    values = {n: config[n] for n in names if n not in ('num_classes', 'vjp')}
    return cls(num_classes=num_classes, vjp=config.model.vjp, **values)


# Compared by identity (eq=False): hashing and comparing a graphdef on every
# call would cost more than a whole quickstart step.
@dataclasses.dataclass(frozen=True, eq=False)
class Network:
  """The fixed parts of a run's network: static under jit."""

  graphdef: nnx.GraphDef  # of (model, optimizer), in train mode
  normalize: Callable[[jax.Array], jax.Array]  # uint8 batch -> float32
  batch_sharding: NamedSharding  # a batch split over the mesh's 'data' axis


def zero_sums() -> dict:
  """Running train sums since the last evaluation (saved with checkpoints)."""
  return {
      'loss': np.zeros((), np.float32),
      'correct': np.zeros((), np.int32),
      'steps': np.zeros((), np.int32),
      # First step whose loss was NaN or Inf, or -1; checked on the host.
      'nonfinite_step': np.full((), -1, np.int32),
  }


def start_state(model_and_optimizer, ckpt, replicated, signature) -> tuple:
  """Splits (model, optimizer) as the steps take it, places it, restores it.

  Returns the graph definition, the RNG state (reseeded inside each step, so
  never saved), the state, the running train sums (`zero_sums`) and the step
  to start at: 0, or the step of `ckpt`'s latest checkpoint, restored into the
  same structure and sharding (the newest intact one whose signature is
  `signature`; see `checkpoint.Checkpointer.restore`).
  """
  graphdef, rngs, state = nnx.split(model_and_optimizer, nnx.RngState, ...)
  state, rngs = distributed.put_replicated((state, rngs), replicated)
  sums = distributed.put_replicated(zero_sums(), replicated)
  if ckpt.latest_step() is None:
    return graphdef, rngs, state, sums, 0
  tree = {'state': nnx.to_pure_dict(state), 'sums': sums}
  start, saved = ckpt.restore(tree, signature)
  nnx.replace_by_pure_dict(state, saved['state'])
  return graphdef, rngs, state, saved['sums'], start


def loss_fn(vjp: str):
  """The training loss, with the hand-written backward or autodiff's."""
  return nn.select(ops.softmax_cross_entropy, vjp)


LOSS_REDUCTIONS = ('mean', 'sum')


def validate(config) -> None:
  """Checks the loss reduction and batch order; a one-line ValueError."""
  for key, allowed in (
      ('loss_reduction', LOSS_REDUCTIONS),
      ('batch_order', input_pipeline.BATCH_ORDERS),
  ):
    if config[key] not in allowed:
      raise ValueError(
          f'config.{key}={config[key]!r}: expected one of {", ".join(allowed)}'
      )


def train_loss(hp: Hparams, logits, targets) -> tuple[jax.Array, jax.Array]:
  r"""(the loss to differentiate, the per-example mean loss) of a batch.

  With :math:`\ell_i` example :math:`i`'s loss in a batch of :math:`B`,
  ``'mean'`` differentiates :math:`\frac{1}{B} \sum_i \ell_i` and ``'sum'``
  :math:`\sum_i \ell_i = B \cdot \mathrm{mean}`, so its gradient is
  :math:`B` times larger (vugrad's, whose learning rate then applies
  unconverted; the NumPy seeds average). :math:`B` is the global batch,
  whatever the mesh. The mean's backward is the op's own (``hp.vjp``); the
  constant factor is the step's.
  """
  mean = loss_fn(hp.vjp)(logits, targets)
  if hp.loss_reduction == 'sum':
    return mean * logits.shape[0], mean
  return mean, mean


def _batch(hp, net, step, images, labels):
  """Gathers, normalizes and augments step `step`'s batch, on device."""
  key = jax.random.fold_in(jax.random.key(hp.seed), step)
  augment_key, dropout_key = jax.random.split(key)
  idx = input_pipeline.batch_indices(
      hp.seed, step, hp.batch_size, images.shape[0], hp.batch_order
  )
  x = jax.lax.with_sharding_constraint(images[idx], net.batch_sharding)
  y = jax.lax.with_sharding_constraint(labels[idx], net.batch_sharding)
  x = input_pipeline.augment(
      augment_key, net.normalize(x), hp.random_crop_padding, hp.random_flip
  )
  return x, y, dropout_key


@functools.partial(jax.jit, static_argnums=(0, 1), donate_argnums=(3, 4))
def train_step(hp: Hparams, net: Network, rngs, state, sums, step, images, y):
  """One step: batch, forward, backward, update; returns (state, sums).

  The batch of `input_pipeline.batch_indices` is sharded over the mesh's
  'data' axis and the state replicated, so XLA inserts the gradient
  all-reduce and batch-norm statistics are over the global batch. `rngs` (the
  model's RNG state) enters as an input because NNX reseeds only such state;
  the dropout keys are drawn from (seed, step), so it is never saved.
  """
  x, y, dropout_key = _batch(hp, net, step, images, y)
  model, optimizer = nnx.merge(net.graphdef, rngs, state)
  nnx.reseed(model, dropout=dropout_key)
  targets = y
  if hp.label_smoothing:
    targets = optax.smooth_labels(
        jax.nn.one_hot(y, hp.num_classes), hp.label_smoothing
    )

  def loss(model):
    # bf16 models still hand float32 logits to the softmax and the loss.
    logits = model(x).astype(jnp.float32)
    value, mean = train_loss(hp, logits, targets)
    return value, (mean, logits)

  (_, (value, logits)), grads = nnx.value_and_grad(loss, has_aux=True)(model)
  optimizer.update(model, grads)
  first_bad = jnp.where(
      (sums['nonfinite_step'] < 0) & ~jnp.isfinite(value),
      step + 1,
      sums['nonfinite_step'],
  )
  sums = {
      'loss': sums['loss'] + value,
      'correct': sums['correct'] + jnp.sum(jnp.argmax(logits, -1) == y),
      'steps': sums['steps'] + 1,
      'nonfinite_step': first_bad,
  }
  _, _, state = nnx.split((model, optimizer), nnx.RngState, ...)
  return state, sums


def pad_for_eval(images, labels, batch_size):
  """Pads a split to whole batches; padded labels are -1 and masked out."""
  pad = -len(labels) % batch_size
  images = np.concatenate(
      [images, np.zeros((pad, *images.shape[1:]), images.dtype)]
  )
  labels = np.concatenate([labels, np.full((pad,), -1, labels.dtype)])
  return images, labels


@functools.partial(jax.jit, static_argnums=(0, 1))
def evaluate(hp: Hparams, net: Network, rngs, state, images, labels):
  """Mean loss and accuracy of the model in eval mode over a padded split.

  One compiled scan over batches of `hp.eval_batch_size` (see `pad_for_eval`);
  the padding is masked, so each example counts once.
  """
  model, _ = nnx.merge(net.graphdef, rngs, state)
  model.eval()  # Only this traced copy; the caller's model is untouched.
  size = hp.eval_batch_size

  def body(totals, i):
    x = jax.lax.dynamic_slice_in_dim(images, i * size, size)
    y = jax.lax.dynamic_slice_in_dim(labels, i * size, size)
    x = net.normalize(jax.lax.with_sharding_constraint(x, net.batch_sharding))
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

  (loss, correct), _ = jax.lax.scan(
      body,
      (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)),
      jnp.arange(images.shape[0] // size),
  )
  count = jnp.sum(labels >= 0)
  return loss / count, correct / count
