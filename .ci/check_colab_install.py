"""Checks a `pip install --dry-run --report` against a Colab runtime's pins.

Usage: python .ci/check_colab_install.py REPORT.json CONSTRAINTS.txt

Fails (exit 1, one line per problem) if the install would put any pinned
package at another version than the runtime ships, or would add tensorflow-cpu
beside tensorflow (two distributions writing the same `tensorflow` module).
"""

import json
import re
import sys


def _canonical(name: str) -> str:
  return re.sub(r'[-_.]+', '-', name).lower()


def main(report_path: str, constraints_path: str) -> int:
  pins = {}
  with open(constraints_path) as f:
    for line in f:
      line = line.split('#')[0].strip()
      if line:
        name, version = line.split('==')
        pins[_canonical(name)] = version.strip()
  with open(report_path) as f:
    install = {
        _canonical(i['metadata']['name']): i['metadata']['version']
        for i in json.load(f)['install']
    }
  problems = [
      f"{name} {install[name]} would replace the runtime's {version}"
      for name, version in pins.items()
      if name in install and install[name] != version
  ]
  if 'tensorflow-cpu' in install and 'tensorflow' in install | pins:
    problems.append(
        f'tensorflow-cpu {install["tensorflow-cpu"]} would be installed beside'
        ' tensorflow'
    )
  for problem in problems:
    print(f'{constraints_path}: {problem}', file=sys.stderr)
  if not problems:
    shown = ', '.join(f'{n} {install[n]}' for n in sorted(pins) if n in install)
    print(f'{constraints_path}: resolves without replacing anything ({shown})')
  return 1 if problems else 0


if __name__ == '__main__':
  sys.exit(main(*sys.argv[1:]))
