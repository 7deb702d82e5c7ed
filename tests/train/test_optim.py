"""Optimizers and schedules built from a config."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from train import optim


def config(**overrides):
  c = default.get_config()
  c.max_steps = 100
  c.update(overrides)
  return optim.Settings.from_config(c)


@pytest.mark.parametrize(
    ('schedule', 'expected'),
    [
        ({'schedule': 'constant'}, {0: 0.1, 99: 0.1}),
        ({'schedule': 'cosine'}, {0: 0.1, 50: 0.05, 100: 0.0}),
        ({'schedule': 'warmup_cosine', 'warmup_steps': 10}, {0: 0, 10: 0.1}),
        ({'schedule': 'piecewise'}, {49: 0.1, 50: 0.01, 75: 0.001}),
    ],
)
def test_schedule_values(schedule, expected):
  lr = optim.make_schedule(config(learning_rate=0.1, **schedule))
  for step, value in expected.items():
    assert float(lr(step)) == pytest.approx(value, abs=1e-7)


@pytest.mark.parametrize('name', optim.OPTIMIZERS)
def test_weight_decay_reaches_kernels_only(name):
  params = {'kernel': jnp.ones((2, 2)), 'bias': jnp.ones(2)}
  zeros = {'kernel': jnp.zeros((2, 2)), 'bias': jnp.zeros(2)}
  settings = config(optimizer=name, learning_rate=0.1, weight_decay=0.5)
  tx = optim.make_optimizer(settings, optim.make_schedule(settings))
  updates, _ = tx.update(zeros, tx.init(params), params)
  assert np.all(np.asarray(updates['kernel']) < 0)
  np.testing.assert_array_equal(updates['bias'], 0)


def test_gradient_clipping_bounds_the_step():
  settings = config(optimizer='sgd', learning_rate=1.0, grad_clip_norm=1.0)
  tx = optim.make_optimizer(settings, optim.make_schedule(settings))
  grads = {'w': jnp.full((4,), 100.0)}
  updates, _ = tx.update(grads, tx.init(grads))
  assert float(optax.tree.norm(updates)) == pytest.approx(1.0)
