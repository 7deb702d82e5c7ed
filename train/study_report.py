"""A study's report: results.json, one PNG per panel, results.md."""

import json
import os

import numpy as np

from train import workdir as workdir_lib


def summarize(result, reference) -> dict:
  """One row of results.json: the final and best evaluation, time, speed.

  `result` and `reference` are `study.Result`s; the reference (or None) is the
  variant whose test loss each evaluation is compared with.
  """
  rows = result.records
  best = max(rows, key=lambda r: r['test_accuracy']) if rows else {}
  theirs = {
      r['step']: r['test_loss']
      for r in (reference.records if reference else ())
  }
  gaps = [
      abs(r['test_loss'] - theirs[r['step']])
      for r in rows
      if r['step'] in theirs
  ]
  return {
      'name': result.name,
      'overrides': result.overrides,
      'status': result.status,
      'final_accuracy': rows[-1]['test_accuracy'] if rows else None,
      'best_accuracy': best.get('test_accuracy'),
      'best_epoch': best.get('epoch'),
      'wall_time': rows[-1]['wall_time'] if rows else None,
      'images_per_sec': (
          float(np.median([r['images_per_sec'] for r in rows]))
          if rows
          else None
      ),
      'max_test_loss_gap': max(gaps) if gaps else None,
  }


def _label(panel: str, cfg) -> str:
  split, metric = panel.split('_', 1)
  if split == 'test' and cfg.validation_size:
    split = 'validation'
  return f'{split} {"cross-entropy loss" if metric == "loss" else metric}'


def plot(results: list, panel: str, path: str, title: str) -> None:
  """One panel: `panel` over epochs, a line per variant that has records."""
  import matplotlib  # Only the end of a study needs it.

  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  for r in results:
    if r.records:
      epochs = [row['epoch'] for row in r.records]
      ax.plot(
          epochs, [row[panel] for row in r.records], 'o-', ms=3, label=r.name
      )
  label = _label(panel, next(r.config for r in results if r.config))
  ax.set(xlabel='epoch', ylabel=label, title=f'{title}: {label}')
  ax.grid(alpha=0.3)
  ax.legend(fontsize='small')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _cell(value, fmt='{:.4f}'):
  return '—' if value is None else fmt.format(value)


def table(rows: list[dict], cfg, reference: str) -> str:
  """results.md's table: a row per variant."""
  split = 'validation' if cfg.validation_size else 'test'
  head = [
      'variant',
      'overrides',
      f'final {split} acc',
      f'best {split} acc',
      'best at epoch',
      'wall time',
      'images/s',
  ]
  if reference:
    head.append(f'max abs test-loss gap to {reference}')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for row in rows:
    done = row['status'] == 'done'
    cells = [
        row['name'],
        ', '.join(f'`{k}={v}`' for k, v in row['overrides'].items()) or '—',
        _cell(row['final_accuracy']) if done else row['status'],
        _cell(row['best_accuracy']),
        _cell(row['best_epoch'], '{:.1f}'),
        _cell(row['wall_time'], '{:.0f} s'),
        _cell(row['images_per_sec'], '{:.0f}'),
    ]
    if reference:
      cells.append(_cell(row['max_test_loss_gap'], '{:.2e}'))
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def write(results, rows, cfg, workdir, name, picked) -> None:
  """Writes results.json, the panels (if any variant has records), results.md.

  `picked` is `(name, overrides, accuracy)` of the stage-1 study's best
  variant that this study shares, or None.
  """
  workdir_lib.atomic_write(
      os.path.join(workdir, 'results.json'),
      json.dumps({'study': name, 'variants': rows}, indent=2) + '\n',
  )
  if any(r.records for r in results):
    for panel in cfg.study.panels:
      plot(results, panel, os.path.join(workdir, f'{panel}.png'), name)
  text = [
      f'# Study `{name}` (base config `{cfg.study.base}`)',
      '',
      (
          f'Data `{cfg.dataset}`, {cfg.max_steps} steps of batch'
          f' {cfg.batch_size}, seed {cfg.seed}.'
      ),
  ]
  if picked:
    text.append(
        f'Shared: the best variant of {cfg.study.best_of}, {picked[0]!r}'
        f' (best accuracy {picked[2]:.4f}): {picked[1]}.'
    )
  text += ['', table(rows, cfg, cfg.study.reference), '']
  text += [f'![{p}]({p}.png)' for p in cfg.study.panels]
  path = os.path.join(workdir, 'results.md')
  workdir_lib.atomic_write(path, '\n'.join(text) + '\n')
  print(f'wrote {path}', flush=True)
