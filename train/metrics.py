"""metrics.jsonl: one JSON object per evaluation, rewritten atomically."""

import json
import os

from train import workdir as workdir_lib


class MetricsLog:
  """Appends one JSON object per evaluation to workdir/metrics.jsonl."""

  def __init__(self, workdir: str, start_step: int, primary: bool = True):
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.primary = primary  # Of the processes of a run, one writes the file.
    self.records = [r for r in read(self.path) if r['step'] <= start_step]
    if not primary:
      return
    # Rows past the restored checkpoint come from a run that was cut short;
    # they will be recomputed, so they are dropped to keep one row per step.
    # Atomically: a kill during the rewrite must not empty the file.
    workdir_lib.atomic_write(
        self.path, ''.join(json.dumps(r) + '\n' for r in self.records)
    )

  def write(self, record: dict) -> None:
    self.records.append(record)
    if not self.primary:
      return
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')


def read(path: str) -> list[dict]:
  """The rows of a metrics.jsonl file ([] if there is none).

  A last line without its newline that does not parse is an append cut short
  by a crash; it is dropped. Its row is past the last checkpoint (the loop
  appends a row before saving the checkpoint of that step), so the resumed
  run writes it again. Any other line that is not a JSON object with an
  integer "step" is a one-line ValueError naming the file and line number.
  """
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.read().split('\n')
  records = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except ValueError:
      record = None
    if isinstance(record, dict) and isinstance(record.get('step'), int):
      records.append(record)
    elif number < len(lines):
      raise ValueError(
          f'{path}, line {number}: not a metrics row (a JSON object with an'
          f' integer "step"): {line[:60]!r}; fix or delete that line, or use'
          ' another --workdir.'
      )
  return records
