"""The on-device part of the input pipeline: normalize, augment, batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train import input_pipeline


def test_normalizers_use_train_statistics():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (50, 4, 3, 2), dtype=np.uint8)
  x[..., 1] //= 4  # Channels with different statistics.
  u = x / 255.0
  normalize = {
      kind: jax.jit(input_pipeline.make_normalizer(x, kind))
      for kind in ('unit', 'mean_image', 'per_channel')
  }
  unit = normalize['unit'](x)
  assert unit.dtype == jnp.float32
  np.testing.assert_allclose(unit, u, rtol=1e-6)
  np.testing.assert_allclose(
      normalize['mean_image'](x), u - u.mean(axis=0), atol=1e-6
  )
  per_channel = np.asarray(normalize['per_channel'](x))
  np.testing.assert_allclose(per_channel.mean(axis=(0, 1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(per_channel.std(axis=(0, 1, 2)), 1, atol=1e-5)
  constant = input_pipeline.make_normalizer(0 * x + 7, 'per_channel')(x)
  assert np.isfinite(constant).all()
  with pytest.raises(ValueError, match='zca'):
    input_pipeline.make_normalizer(x, 'zca')


def test_augment_crops_padded_windows_and_flips():
  x = jnp.arange(16 * 4 * 5 * 2, dtype=jnp.float32).reshape(16, 4, 5, 2) + 1
  augment = jax.jit(input_pipeline.augment, static_argnums=(2, 3))
  key = jax.random.key(0)
  np.testing.assert_array_equal(augment(key, x, 0, False), x)
  flipped = np.asarray(augment(key, x, 0, True))
  is_flipped = [
      np.array_equal(f, np.asarray(a)[:, ::-1])
      for f, a in zip(flipped, x, strict=True)
  ]
  is_kept = [np.array_equal(f, a) for f, a in zip(flipped, x, strict=True)]
  assert (
      all(np.logical_or(is_flipped, is_kept))
      and any(is_flipped)
      and any(is_kept)
  )
  p = 2
  cropped = np.asarray(augment(key, x, p, False))
  padded = np.pad(np.asarray(x), ((0, 0), (p, p), (p, p), (0, 0)))
  offsets = set()
  for c, q in zip(cropped, padded, strict=True):
    [offset] = [
        (i, j)
        for i in range(2 * p + 1)
        for j in range(2 * p + 1)
        if np.array_equal(c, q[i : i + 4, j : j + 5])
    ]
    offsets.add(offset)
  assert len(offsets) > 4
  assert not np.array_equal(
      augment(jax.random.key(1), x, p, True), augment(key, x, p, True)
  )


@pytest.mark.parametrize(
    ('num_examples', 'batch_size'), [(60, 7), (60, 60), (1, 1)]
)
def test_batch_indices_visit_each_example_once_per_epoch(
    num_examples, batch_size
):
  indices = jax.jit(input_pipeline.batch_indices, static_argnums=(2, 3))
  steps = num_examples // batch_size
  epochs = [
      np.concatenate([
          indices(3, e * steps + s, batch_size, num_examples)
          for s in range(steps)
      ])
      for e in range(2)
  ]
  for epoch in epochs:
    assert epoch.dtype == np.int32 and len(set(epoch)) == steps * batch_size
    assert 0 <= epoch.min() and epoch.max() < num_examples
  if num_examples > 1:
    assert not np.array_equal(epochs[0], epochs[1])
  np.testing.assert_array_equal(
      input_pipeline.batch_indices(3, steps, batch_size, num_examples),
      epochs[1][:batch_size],
  )


def test_batch_indices_depend_on_seed_and_spread_over_examples():
  indices = jax.jit(
      jax.vmap(input_pipeline.batch_indices, (0, 0, None, None)),
      static_argnums=(2, 3),
  )
  epochs = jnp.arange(50)
  first = np.asarray(indices(0 * epochs, 10 * epochs, 100, 1000)[:, 0])
  assert len(set(first)) > 40  # 50 draws from 1000 rarely collide more.
  by_seed = indices(jnp.arange(2), jnp.zeros(2, int), 100, 1000)
  assert not np.array_equal(by_seed[0], by_seed[1])
  with pytest.raises(ValueError, match='batch_size=11'):
    input_pipeline.batch_indices(0, 0, 11, 10)
