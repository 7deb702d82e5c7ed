"""Loads a data set once as uint8; normalizes, batches, augments on device.

Host side (`load`, `validate`, the `Dataset` they return) lives in
`train/datasets.py`; this module re-exports `load` and `validate` next to the
jittable functions the train step calls, so the whole pipeline runs inside one
compiled step without an iterator to stall on or to checkpoint.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from train import datasets

_SHUFFLE_STREAM = 0x5EED  # Folded into the key of `batch_indices`.
_SAMPLE_STREAM = 0x5A3B1E  # The same, for batch_order='sample'.

NORMALIZATIONS = ('per_channel', 'unit', 'mean_image', 'raw', 'raw_mean_image')
BATCH_ORDERS = ('shuffle', 'in_order', 'sample')

validate = datasets.validate
load = datasets.load


def make_normalizer(
    train_images: np.ndarray, kind: str
) -> Callable[[jax.Array], jax.Array]:
  r"""Returns a jittable map from a uint8 NHWC batch to float32.

  Statistics come from the train split, computed once on the host in float64,
  with pixels scaled to :math:`[0, 1]` first (:math:`u = x / 255`):

  - ``'unit'``: :math:`u`.
  - ``'mean_image'``: :math:`u - \bar{u}`, with :math:`\bar{u}` the mean
    image (one value per pixel and channel).
  - ``'per_channel'``: :math:`(u - \mu_c) / \sigma_c`, with the mean and
    standard deviation of each channel over all images and pixels.

  The seeds' literal scales keep the pixels' 0..255 range:

  - ``'raw'``: :math:`x` as float (vugrad's MNIST).
  - ``'raw_mean_image'``: :math:`x - \bar{x}` (the 2019 NumPy MLP's
    ``cifar10_utils``: float32 pixels minus the mean training image).
  """
  divisor = 1.0 if kind in ('raw', 'raw_mean_image') else 255.0
  if kind in ('unit', 'raw'):
    shift, scale = np.zeros(()), np.ones(())
  elif kind in ('mean_image', 'raw_mean_image'):
    shift, scale = _mean_image(train_images) / divisor, np.ones(())
  elif kind == 'per_channel':
    shift, scale = _channel_mean_std(train_images)
  else:
    raise ValueError(
        f'normalization {kind!r}: expected one of {", ".join(NORMALIZATIONS)}'
    )
  shift = jnp.asarray(shift, jnp.float32)
  inv_scale = jnp.asarray(1.0 / scale, jnp.float32)

  def normalize(x: jax.Array) -> jax.Array:
    # Division by 1.0 is exact: 'raw' keeps the integer pixel values.
    return (x.astype(jnp.float32) / divisor - shift) * inv_scale

  return normalize


def _mean_image(images):
  return images.mean(axis=0, dtype=np.float64)


def _channel_mean_std(images):
  """Per-channel mean and std from 256-bin histograms: one pass, exact."""
  u = np.arange(256) / 255.0
  counts = np.stack([
      np.bincount(images[..., c].ravel(), minlength=256)
      for c in range(images.shape[-1])
  ])
  n = counts.sum(axis=1)
  mean = counts @ u / n
  std = np.sqrt(np.maximum(counts @ u**2 / n - mean**2, 0.0))
  return mean, np.where(std > 0, std, 1.0)  # A constant channel stays 0.


def augment(key, images, padding: int, flip: bool) -> jax.Array:
  """Per-example random crop after zero padding, and random horizontal flip.

  Args:
    key: a PRNG key; each example gets its own offsets and flip.
    images: an NHWC batch, of any dtype (zero padding is the mean after a
      mean-subtracting normalization).
    padding: pixels of zeros added on each side before cropping back to the
      input size; 0 turns cropping off.
    flip: whether to mirror each image left-right with probability 1/2.

  Returns:
    An array of the shape and dtype of `images`.
  """
  n, h, w, c = images.shape
  crop_key, flip_key = jax.random.split(key)
  if padding:
    padded = jnp.pad(
        images, ((0, 0), (padding, padding), (padding, padding), (0, 0))
    )
    offsets = jax.random.randint(crop_key, (n, 2), 0, 2 * padding + 1)
    crop = lambda x, o: jax.lax.dynamic_slice(x, (o[0], o[1], 0), (h, w, c))
    images = jax.vmap(crop)(padded, offsets)
  if flip:
    mirror = jax.random.bernoulli(flip_key, 0.5, (n, 1, 1, 1))
    images = jnp.where(mirror, images[:, :, ::-1], images)
  return images


def batch_indices(
    seed: int,
    step: int,
    batch_size: int,
    num_examples: int,
    order: str = 'shuffle',
) -> jax.Array:
  """The indices of the training examples of step `step`; jittable.

  With `order='shuffle'`, epoch `e = step // (num_examples // batch_size)`
  visits the examples in a fresh pseudo-random order drawn from `(seed, e)`;
  its remainder is dropped. Only the `batch_size` positions needed are
  evaluated (see `_shuffle`): a full `jax.random.permutation` is a sort
  costing 25-80 ms a step on CPU. `'in_order'` takes the same positions of
  the unshuffled split (vugrad's loop, less its partial last batch);
  `'sample'` draws each index uniformly, with replacement, from
  `(seed, step)`. The batch is a pure function of its arguments, so a resumed
  run sees exactly the batches of an uninterrupted one without any iterator
  state.

  Args:
    seed: an integer (or integer array) seeding the shuffle.
    step: the global step, a Python int or a traced integer.
    batch_size: static; at most `num_examples`.
    num_examples: static; the size of the train split.
    order: static; one of `BATCH_ORDERS`.

  Returns:
    An int32 array of shape `(batch_size,)`.
  """
  if not 0 < batch_size <= num_examples:
    raise ValueError(
        f'batch_size={batch_size}: expected between 1 and the number of'
        f' training examples ({num_examples})'
    )
  if order == 'sample':
    key = jax.random.fold_in(jax.random.key(seed), _SAMPLE_STREAM)
    key = jax.random.fold_in(key, step)
    return jax.random.randint(key, (batch_size,), 0, num_examples, jnp.int32)
  epoch, position = jnp.divmod(step, num_examples // batch_size)
  i = position * batch_size + jnp.arange(batch_size)
  if order == 'in_order':
    return i.astype(jnp.int32)
  if order != 'shuffle':
    raise ValueError(
        f'batch order {order!r}: expected one of {", ".join(BATCH_ORDERS)}'
    )
  # A stream of its own, so keys the loop derives from `seed` never repeat it.
  key = jax.random.fold_in(jax.random.key(seed), _SHUFFLE_STREAM)
  key = jax.random.fold_in(key, epoch)
  return _shuffle(key, i.astype(jnp.uint32), num_examples).astype(jnp.int32)


def _shuffle(key, i, n, rounds=6):
  """Position `i` of a pseudo-random permutation of `[0, n)`, drawn from key.

  A Feistel network (`rounds` rounds of `(l, r) -> (r, l ^ F_k(r))`) is a
  bijection of `[0, 4^h)`, with `4^h >= n` the smallest such; re-applying it
  to outputs `>= n` ("cycle walking", under 4 times on average) restricts it
  to a bijection of `[0, n)`.
  """
  half = max(1, ((n - 1).bit_length() + 1) // 2)
  mask = jnp.uint32((1 << half) - 1)
  round_keys = jax.random.bits(key, (rounds,), jnp.uint32)

  def encrypt(x):
    left, right = x >> half, x & mask
    for k in round_keys:
      left, right = right, left ^ (_mix(right ^ k) & mask)
    return (left << half) | right

  def walk(x):
    return jnp.where(x >= n, encrypt(x), x)

  y = encrypt(i)
  return jax.lax.while_loop(lambda x: jnp.any(x >= n), walk, y)


def _mix(x):
  """A 32-bit integer hash (murmur3's finalizer)."""
  x = (x ^ (x >> 16)) * jnp.uint32(0x85EBCA6B)
  x = (x ^ (x >> 13)) * jnp.uint32(0xC2B2AE35)
  return x ^ (x >> 16)
