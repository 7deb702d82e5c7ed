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


def test_raw_normalizers_keep_the_pixel_scale():
  rng = np.random.default_rng(1)
  x = rng.integers(0, 256, (40, 3, 2, 3), dtype=np.uint8)
  raw = jax.jit(input_pipeline.make_normalizer(x, 'raw'))(x)
  assert raw.dtype == jnp.float32
  np.testing.assert_array_equal(raw, x.astype(np.float32))  # Exactly x.
  centred = jax.jit(input_pipeline.make_normalizer(x, 'raw_mean_image'))(x)
  mean_image = x.mean(axis=0, dtype=np.float64)
  np.testing.assert_allclose(centred, x - mean_image, atol=1e-4)
  unit_scale = input_pipeline.make_normalizer(x, 'mean_image')(x)
  np.testing.assert_allclose(centred / 255, unit_scale, atol=1e-6)
  with pytest.raises(ValueError, match='expected one of per_channel, unit'):
    input_pipeline.make_normalizer(x, 'raw01')


def test_in_order_batches_walk_the_split_and_wrap_each_epoch():
  indices = jax.jit(input_pipeline.batch_indices, static_argnums=(2, 3, 4))
  batch = lambda step: np.asarray(indices(5, step, 4, 10, 'in_order'))
  np.testing.assert_array_equal(batch(0), [0, 1, 2, 3])
  np.testing.assert_array_equal(batch(1), [4, 5, 6, 7])
  # Two full batches an epoch; examples 8 and 9 are the dropped remainder.
  np.testing.assert_array_equal(batch(2), [0, 1, 2, 3])
  np.testing.assert_array_equal(
      batch(7), input_pipeline.batch_indices(5, 7, 4, 10, 'in_order')
  )


def test_sampled_batches_come_from_seed_and_step_with_replacement():
  indices = jax.jit(input_pipeline.batch_indices, static_argnums=(2, 3, 4))
  batch = lambda seed, step: np.asarray(indices(seed, step, 10, 10, 'sample'))
  # A pure function of (seed, step): what a resumed run draws again.
  np.testing.assert_array_equal(
      batch(0, 3), input_pipeline.batch_indices(0, 3, 10, 10, 'sample')
  )
  assert not np.array_equal(batch(0, 3), batch(0, 4))
  assert not np.array_equal(batch(0, 3), batch(1, 3))
  draws = np.stack([batch(0, s) for s in range(20)])
  assert draws.dtype == np.int32 and 0 <= draws.min() and draws.max() < 10
  # Without replacement every row would be a permutation of 0..9.
  assert any(len(set(row)) < 10 for row in draws)
  assert len(set(draws.ravel())) == 10


def test_shuffle_stays_the_default_order():
  for step in (0, 5, 12):
    np.testing.assert_array_equal(
        input_pipeline.batch_indices(3, step, 7, 60),
        input_pipeline.batch_indices(3, step, 7, 60, 'shuffle'),
    )
  with pytest.raises(ValueError, match="batch order 'random': expected one"):
    input_pipeline.batch_indices(3, 0, 7, 60, 'random')
