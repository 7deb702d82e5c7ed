"""`python -m train.study --config configs/studies/<name>.py`: runs, plots and tabulates a study.

A study config (built by `config`) holds its base config's keys, so
`--config.<key>=<value>` changes every variant, plus `config.study`: the
variants (a name and dotted overrides each) and the panels to plot. Each
variant trains in its own resumable workdir under the study's workdir; a
finished one is not trained again. Then one PNG per panel (over epochs, a line
per variant), results.md and results.json are written to the study's workdir.
"""

import dataclasses
import importlib
import json
import os

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from train import config_files, loop, metrics, study_report

CIFAR10_TRAIN = 50_000
PANELS = ('train_accuracy', 'test_accuracy', 'train_loss', 'test_loss')
FLAGS = flags.FLAGS
STUDIES_DIR = os.path.join(config_files.CONFIGS_DIR, 'studies')


def steps(epochs: int, batch_size: int, train_size: int = CIFAR10_TRAIN) -> int:
  """`max_steps` for `epochs` epochs of `train_size // batch_size` batches."""
  return epochs * (train_size // batch_size)


def config(
    base,
    *,
    variants,
    overrides=(),
    panels=PANELS,
    reference='',
    best_of='',
    pending=(),
) -> ml_collections.ConfigDict:
  """A study config: `configs.<base>` with shared `overrides`, plus `study`.

  Args:
    base: the module name of a config in the `configs` package.
    variants: `(name, {dotted key: value})` pairs, trained in this order.
    overrides: `{dotted key: value}` shared by every variant.
    panels: metrics.jsonl fields plotted over epochs, one PNG each.
    reference: a variant the others are compared with (the largest
      difference in test loss at any evaluation).
    best_of: the workdir of a finished study; its best variant's overrides
      are shared by every variant here (a second stage "at the best").
    pending: dotted keys this version of jaxbp may lack; a variant setting
      one that is missing is listed as not run instead of failing.
  """
  cfg = importlib.import_module(f'configs.{base}').get_config()
  apply(cfg, dict(overrides), f'study on configs/{base}.py')
  cfg.study = ml_collections.ConfigDict({
      'base': base,
      'variants': tuple((n, dict(o)) for n, o in variants),
      'panels': tuple(panels),
      'reference': reference,
      'best_of': best_of,
      'pending': tuple(pending),
  })
  return cfg


def has_key(cfg, dotted: str) -> bool:
  *parents, last = dotted.split('.')
  for part in parents:
    if part not in cfg or not isinstance(cfg[part], ml_collections.ConfigDict):
      return False
    cfg = cfg[part]
  return last in cfg


def apply(cfg, overrides: dict, where: str) -> None:
  """Sets dotted keys in cfg; a one-line ValueError for an unknown or bad one."""
  for key, value in overrides.items():
    if not has_key(cfg, key):
      raise ValueError(f'{where}: unknown config key {key!r}.')
    *parents, last = key.split('.')
    node = cfg
    for part in parents:
      node = node[part]
    try:
      node[last] = value
    except (TypeError, ValueError) as e:
      raise ValueError(f'{where}: {key}={value!r}: {e}') from None


@dataclasses.dataclass
class Result:
  """One variant of a study: its settings and its metrics.jsonl rows."""

  name: str
  overrides: dict
  config: ml_collections.ConfigDict | None = None
  status: str = 'done'  # done | diverged: ... | not run: ...
  records: list = dataclasses.field(default_factory=list)


def variants(cfg, only=(), shared=None) -> list[Result]:
  """A Result per selected variant, its config built and locked."""
  names = [n for n, _ in cfg.study.variants]
  unknown = sorted(set(only) - set(names))
  if unknown:
    raise ValueError(
        f'unknown variant(s) {", ".join(unknown)}; this study has'
        f' {", ".join(names)}.'
    )
  base = cfg.copy_and_resolve_references()
  with base.unlocked():
    del base['study']
  apply(base, shared or {}, f'study.best_of={cfg.study.best_of}')
  results = []
  for name, overrides in cfg.study.variants:
    if only and name not in only:
      continue
    result = Result(name, dict(overrides))
    missing = [
        k for k in overrides if k in cfg.study.pending and not has_key(base, k)
    ]
    if missing:
      result.status = f'not run: needs config key {", ".join(missing)}'
    else:
      result.config = base.copy_and_resolve_references()
      apply(result.config, overrides, f'variant {name!r}')
      result.config.lock()
    results.append(result)
  return results


def _check_same_settings(result: Result, workdir: str) -> None:
  """Refuses to mix a variant's earlier run with other settings."""
  path = os.path.join(workdir, 'variant.json')
  now = json.loads(result.config.to_json_best_effort())
  if os.path.exists(path):
    with open(path) as f:
      before = json.load(f)
    changed = sorted(
        k
        for k in set(now) | set(before)
        if k != 'max_steps' and now.get(k) != before.get(k)
    )
    if changed:
      raise ValueError(
          f'variant {result.name!r} in {workdir} was trained with a different'
          f' {", ".join(changed)}; use another --workdir or the same settings.'
      )
  with open(path, 'w') as f:
    json.dump(now, f, indent=2)


def train_variant(result: Result, workdir: str, progress=None) -> bool:
  """Trains, resumes or skips one variant; False if a signal stopped it."""
  cfg = result.config
  os.makedirs(workdir, exist_ok=True)
  _check_same_settings(result, workdir)
  done = metrics.read(os.path.join(workdir, 'metrics.jsonl'))
  last = done[-1]['step'] if done else 0
  if last > cfg.max_steps:
    raise ValueError(
        f'variant {result.name!r} in {workdir} already ran to step {last},'
        f' past max_steps={cfg.max_steps}; use another --workdir.'
    )
  diverged = os.path.join(workdir, 'diverged.txt')
  if os.path.exists(diverged):  # A rerun would diverge the same way.
    with open(diverged) as f:
      result.status = f.read().strip()
  elif last < cfg.max_steps:
    print(f'== variant {result.name}: {result.overrides}', flush=True)
    try:
      run = loop.train_and_evaluate(cfg, workdir, progress=progress)
    except FloatingPointError as e:
      result.status = f'diverged: {str(e).split(";")[0]}'
      with open(diverged, 'w') as f:
        f.write(result.status + '\n')
    else:
      if run.step < cfg.max_steps:
        return False
  result.records = metrics.read(os.path.join(workdir, 'metrics.jsonl'))
  return True


def best_of(study_dir: str) -> tuple[str, dict, float]:
  """The name, overrides and best accuracy of a study's best variant."""
  path = os.path.join(study_dir, 'results.json')
  if not os.path.exists(path):
    raise ValueError(
        f'study.best_of: {path} does not exist; run that study first, or set'
        ' --config.study.best_of to its --workdir.'
    )
  with open(path) as f:
    rows = [r for r in json.load(f)['variants'] if r['best_accuracy']]
  if not rows:
    raise ValueError(f'study.best_of: no variant in {path} has finished.')
  top = max(rows, key=lambda r: r['best_accuracy'])
  return top['name'], top['overrides'], top['best_accuracy']


def run(cfg, workdir: str, *, name='', only=(), progress=None) -> list[dict]:
  """Runs the selected variants, then writes the panels and results.md."""
  name = name or os.path.basename(os.path.normpath(workdir))
  picked = best_of(cfg.study.best_of) if cfg.study.best_of else None
  results = variants(cfg, only, picked[1] if picked else None)
  for r in results:
    if r.config and not train_variant(
        r, os.path.join(workdir, r.name), progress
    ):
      raise SystemExit(
          f'stopped during variant {r.name!r}; its checkpoint is saved: rerun'
          ' the same command to resume the study.'
      )
  ref = next((r for r in results if r.name == cfg.study.reference), None)
  rows = [
      study_report.summarize(r, ref if r is not ref else None) for r in results
  ]
  study_report.write(results, rows, cfg, workdir, name, picked)
  return rows


def parse_flags(argv: list[str]) -> list[str]:
  """Defines and parses the flags; a bad flag or config key in one line."""
  config_flags.DEFINE_config_file(
      'config',
      None,
      'A study: configs/studies/<name>.py or just <name>;'
      ' --config.<key>=<value> changes every variant.',
      lock_config=True,
  )
  flags.DEFINE_string('workdir', None, 'Default: runs/studies/<study name>.')
  flags.DEFINE_list('variants', [], 'Run only these variants (names).')
  flags.DEFINE_bool('progress', None, 'Progress bars; default: on a tty.')
  return config_files.parse(argv, STUDIES_DIR, kind=('study', 'studies'))


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every checkpoint.
  if FLAGS.config is None:
    raise app.UsageError('--config=configs/studies/<name>.py is required.')
  if 'study' not in FLAGS.config:
    raise SystemExit(
        'error: that config has no `study` key: it is a single run (use'
        ' train.mlp / train.convnet); studies live in configs/studies/.'
    )
  path = config_flags.get_config_filename(FLAGS['config'])
  name = os.path.splitext(os.path.basename(path))[0]
  workdir = FLAGS.workdir or os.path.join('runs', 'studies', name)
  try:
    run(
        FLAGS.config,
        workdir,
        name=name,
        only=FLAGS.variants,
        progress=FLAGS.progress,
    )
  except (ValueError, FloatingPointError) as e:
    raise SystemExit(f'error: {e}') from None


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
