"""train.study on digits: every study's plots and table, skipping, errors."""

import importlib
import json
import os
import pathlib
import pkgutil
import subprocess
import sys

import pytest

from configs import studies
from train import loop, study

ROOT = pathlib.Path(__file__).resolve().parents[2]
NAMES = sorted(m.name for m in pkgutil.iter_modules(studies.__path__))
# A few steps on digits; mnist_mlp's 5,000 held-out images exceed digits'.
TINY = {
    'dataset': 'digits',
    'max_steps': 4,
    'eval_every': 2,
    'checkpoint_every': 4,
    'batch_size': 32,
    'eval_batch_size': 360,
    'validation_size': 0,
    'log_every': 2,
}


def tiny(name: str, **overrides):
  cfg = importlib.import_module(f'configs.studies.{name}').get_config()
  study.apply(cfg, {**TINY, **overrides}, 'test')
  if cfg.model.name == 'small_convnet':
    cfg.model.padding = 'SAME'  # 8x8 digits are too small for VALID.
  return cfg


def table_rows(workdir) -> list[str]:
  text = (pathlib.Path(workdir) / 'results.md').read_text().splitlines()
  return [line for line in text if line.startswith('| ') and '---' not in line][
      1:
  ]


@pytest.fixture(scope='module')
def ran(tmp_path_factory):
  """Every study run once, convnet before convnet_best (which reads it)."""
  root = tmp_path_factory.mktemp('studies')
  order = sorted(NAMES, key=lambda n: n == 'convnet_best')
  for name in order:
    extra = {'study.best_of': str(root / 'convnet')}
    cfg = tiny(name, **(extra if name == 'convnet_best' else {}))
    study.run(cfg, str(root / name), name=name)
  return root


@pytest.mark.parametrize('name', NAMES)
def test_study_writes_panels_and_a_row_per_variant(ran, name):
  cfg = tiny(name)
  workdir = ran / name
  for panel in cfg.study.panels:
    assert (workdir / f'{panel}.png').stat().st_size > 0
  rows = table_rows(workdir)
  assert [r.split(' | ')[0][2:] for r in rows] == [
      n for n, _ in cfg.study.variants
  ]
  results = json.loads((workdir / 'results.json').read_text())['variants']
  for row in results:
    if row['status'] == 'done':
      assert 0 <= row['best_accuracy'] <= 1 and row['best_epoch'] > 0
      assert row['final_accuracy'] <= row['best_accuracy']
      text = (workdir / row['name'] / 'metrics.jsonl').read_text()
      steps = [json.loads(line)['step'] for line in text.splitlines()]
      assert steps == [2, 4]


def test_variants_differ_in_what_they_override(ran):
  configs = {
      name: json.loads((ran / 'batch_norm' / name / 'config.json').read_text())
      for name in ('h128', 'h256-128_bn')
  }
  assert configs['h128']['model']['hidden_units'] == [128]
  assert configs['h128']['model']['norm'] is None
  assert configs['h256-128_bn']['model']['hidden_units'] == [256, 128]
  assert configs['h256-128_bn']['model']['norm'] == 'batch'
  assert (
      configs['h128']['dataset']
      == 'digits'
      == configs['h256-128_bn']['dataset']
  )


def test_manual_vs_autodiff_reports_the_test_loss_gap(ran):
  rows = json.loads((ran / 'manual_vs_autodiff' / 'results.json').read_text())
  by_name = {r['name']: r for r in rows['variants']}
  gap = by_name['autodiff']['max_test_loss_gap']
  assert gap is not None and 0 <= gap < 1e-3
  assert by_name['manual']['images_per_sec'] > 0
  assert (
      'max abs test-loss gap to manual'
      in (ran / 'manual_vs_autodiff' / 'results.md').read_text()
  )


def test_second_stage_starts_from_the_best_of_the_first(ran):
  first = json.loads((ran / 'convnet' / 'results.json').read_text())['variants']
  top = max(first, key=lambda r: r['best_accuracy'])
  sgd = json.loads((ran / 'convnet_best' / 'sgd' / 'config.json').read_text())
  assert sgd['learning_rate'] == top['overrides']['learning_rate']
  assert sgd['momentum'] == top['overrides']['momentum']
  text = (ran / 'convnet_best' / 'results.md').read_text()
  assert repr(top['name']) in text
  assert 'not run' not in text  # The dropout variants run too.
  dropout = json.loads(
      (ran / 'convnet_best' / 'sgd_dropout0.3' / 'config.json').read_text()
  )
  assert dropout['model']['dropout'] == 0.3


def test_rerun_skips_finished_variants(ran, monkeypatch):
  before = {
      p: p.read_text() for p in (ran / 'activations').glob('*/metrics.jsonl')
  }
  calls = []
  monkeypatch.setattr(
      loop, 'train_and_evaluate', lambda *a, **k: calls.append(a)
  )
  study.run(tiny('activations'), str(ran / 'activations'), name='activations')
  assert calls == []
  assert {p: p.read_text() for p in before} == before
  assert len(table_rows(ran / 'activations')) == 5


def test_rerun_with_other_settings_refuses_to_mix(ran):
  cfg = tiny('activations', seed=7)
  with pytest.raises(
      ValueError, match=r"variant 'sigmoid' .* trained with a different seed;"
  ):
    study.run(cfg, str(ran / 'activations'))


def test_unknown_variant_and_key_fail_in_one_line(tmp_path):
  with pytest.raises(ValueError, match=r'unknown variant.*nope.*sigmoid, tanh'):
    study.run(tiny('activations'), str(tmp_path), only=['nope'])
  with pytest.raises(
      ValueError, match=r"variant 'x': unknown config key 'model.nrom'"
  ):
    study.variants(
        study.config('mlp_2021', variants=[('x', {'model.nrom': 1})])
    )
  with pytest.raises(
      ValueError, match=r'study.best_of: .*results.json does not exist'
  ):
    study.run(
        tiny('convnet_best', **{'study.best_of': str(tmp_path)}), str(tmp_path)
    )


def run_cli(*args):
  env = {**os.environ, 'PYTHONPATH': str(ROOT)}
  return subprocess.run(
      [sys.executable, '-m', 'train.study', *args],
      capture_output=True,
      text=True,
      env=env,
      cwd='/',
      timeout=300,
  )


def test_cli_resolves_study_names_from_any_directory_and_fails_in_one_line():
  bad = run_cli('--config', 'activations', '--variants=nope')
  assert bad.returncode == 1
  assert bad.stderr.strip().splitlines() == [
      'error: unknown variant(s) nope; this study has sigmoid, tanh, relu,'
      ' leaky_relu, elu.'
  ]
  key = run_cli('--config=activations', '--config.no_such_key=1')
  assert key.returncode == 1
  assert key.stderr.strip().startswith('error: unknown config key')
  assert len(key.stderr.strip().splitlines()) == 1
  study_name = run_cli('--config=nope')
  line = study_name.stderr.strip().splitlines()[-1]
  assert line.startswith('error: --config=nope: no such study, here or in ')
  assert 'known studies: activations, batch_norm' in line
