"""Two local processes of two CPU devices each, on JAX's distributed runtime.

Each case launches `python -m train.mlp` processes on localhost (gloo
collectives, a free port) and compares them with one process of four devices:
the same numbers, one set of files, an exact resume, a killed peer ending the
run.
"""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.train import conftest
from train import distributed

ROOT, TIMING = conftest.ROOT, conftest.TIMING
PEER_TIMEOUT = 5  # --peer_timeout of the kill tests, in seconds.


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def command(workdir, max_steps, *extra) -> list[str]:
  """A tiny quick-start run: 16 units, SGD (no Adam noise amplification)."""
  return conftest.mlp_command(
      workdir,
      max_steps,
      '--config.eval_every=4',
      '--config.checkpoint_every=4',
      '--config.optimizer=momentum',
      '--config.learning_rate=0.1',
      *extra,
  )


def start(workdir, max_steps, processes, devices, *extra, stdout=None):
  """Popen of each process of one run (of `devices` CPU devices each).

  The first one's `.address` is the run's coordinator address (or None).
  """
  env = conftest.subprocess_env(
      TF_CPP_MIN_LOG_LEVEL='2', JAX_NUM_CPU_DEVICES=str(devices)
  )
  flags, address = [], None
  if processes > 1:
    address = f'localhost:{free_port()}'
    flags = [f'--coordinator_address={address}', f'--num_processes={processes}']
  procs = [
      subprocess.Popen(
          command(workdir, max_steps, *flags, *extra)
          + ([f'--process_id={i}'] if processes > 1 else []),
          cwd=ROOT,
          env=env,
          stdout=stdout or subprocess.PIPE,
          stderr=subprocess.PIPE,
          text=True,
      )
      for i in range(processes)
  ]
  procs[0].address = address
  return procs


def services(address) -> list[int]:
  """Pids of the live coordination-service processes serving `address`."""
  pids = []
  for entry in pathlib.Path('/proc').iterdir():
    try:
      argv = (entry / 'cmdline').read_bytes().split(b'\0')
      state = (entry / 'stat').read_text().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
      continue  # Not a process, or gone meanwhile.
    if b'train._coordination_service' in argv and state != 'Z':
      if any(address.encode() in a for a in argv):
        pids.append(int(entry.name))
  return pids


def finish(procs, timeout=300) -> list:
  """(returncode, stdout, stderr) of each process, after all have ended."""
  results = []
  for p in procs:
    out, err = p.communicate(timeout=timeout)
    results.append((p.returncode, out, err))
  for code, _, err in results:
    assert code == 0, err[-3000:]
  return results


def rows(workdir) -> list[dict]:
  lines = (pathlib.Path(workdir) / 'metrics.jsonl').read_text().splitlines()
  records = [json.loads(line) for line in lines]
  return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """Workdirs of 8 steps: one process of 4 devices; 2 processes of 2."""
  one = tmp_path_factory.mktemp('one_process')
  two = tmp_path_factory.mktemp('two_processes')
  results = {'one': finish(start(one, 8, 1, 4))}
  procs = start(two, 8, 2, 2)
  results['two'] = finish(procs)
  results['services_left'] = services(procs[0].address)
  return {'one': one, 'two': two, 'results': results}


def test_two_processes_match_one_process_of_four_devices(runs):
  one, two = rows(runs['one']), rows(runs['two'])
  assert [r['step'] for r in two] == [4, 8]
  for a, b in zip(one, two, strict=True):
    assert a['test_accuracy'] == b['test_accuracy']
    assert b['test_loss'] == pytest.approx(a['test_loss'], rel=1e-5)
    assert b['train_loss'] == pytest.approx(a['train_loss'], rel=1e-5)


def test_only_process_zero_prints_and_writes_the_run_files(runs):
  (_, out0, _), (_, out1, _) = runs['results']['two']
  assert 'done: 8 steps' in out0 and 'step 8:' in out0
  assert 'done:' not in out1 and 'step ' not in out1
  assert 'trainable parameters' not in out1
  names = sorted(p.name for p in runs['two'].iterdir())
  assert names == sorted([
      '.lock',
      '.lock.1',
      'accuracy.png',
      'checkpoints',
      'config.json',
      'loss.png',
      'metrics.jsonl',
  ])
  assert sorted(os.listdir(runs['two'] / 'checkpoints')) == ['4', '8']
  # The runtime's service (a child of process 0) ended with the run.
  assert runs['results']['services_left'] == []


def test_resume_across_a_restart_of_both_processes_is_exact(runs, tmp_path):
  finish(start(tmp_path, 4, 2, 2))
  assert [r['step'] for r in rows(tmp_path)] == [4]
  finish(start(tmp_path, 8, 2, 2))
  assert rows(tmp_path) == rows(runs['two'])


def test_a_damaged_checkpoint_is_set_aside_once_and_the_run_resumes(
    runs, tmp_path
):
  workdir = tmp_path / 'run'
  shutil.copytree(runs['two'], workdir)
  (workdir / 'checkpoints' / '8' / 'meta' / 'metadata').write_text('{broken')
  (_, _, err0), (_, _, err1) = finish(start(workdir, 8, 2, 2))
  assert 'checkpoint step 8 is damaged' in err0
  assert 'damaged' not in err1
  assert len(os.listdir(workdir / 'checkpoints_damaged')) == 1
  assert rows(workdir) == rows(runs['two'])


def test_a_signal_to_one_process_stops_both_at_one_step(tmp_path):
  procs = start(tmp_path, 10**6, 2, 2, '--config.log_every=5')
  wait_for_rows(tmp_path, procs)  # A row a few steps in: the pipe keeps up.
  procs[1].send_signal(signal.SIGTERM)
  (_, out0, _), _ = finish(procs, timeout=120)
  assert 'stopped by signal to another process' in out0
  # Both stopped after the same step, a multiple of log_every, and saved it.
  step = max(int(n) for n in os.listdir(tmp_path / 'checkpoints'))
  assert step % 5 == 0
  finish(start(tmp_path, step + 4, 2, 2))  # And the run resumes from it.


def wait_for_rows(workdir, procs, limit=240):
  """Waits until process 0 logged an evaluation (all are then training)."""
  path = pathlib.Path(workdir) / 'metrics.jsonl'
  deadline = time.monotonic() + limit
  while not (path.exists() and path.read_text().strip()):
    assert all(p.poll() is None for p in procs), procs[0].stderr.read()
    assert time.monotonic() < deadline, 'no evaluation within the limit'
    time.sleep(0.2)


@pytest.mark.parametrize('victim', [1, 0])
def test_a_killed_process_ends_the_other_in_bounded_time(tmp_path, victim):
  procs = start(
      tmp_path,
      10**6,
      2,
      2,
      f'--peer_timeout={PEER_TIMEOUT}',
      '--config.eval_every=20',
      stdout=subprocess.DEVNULL,  # A full pipe would stop process 0.
  )
  try:
    wait_for_rows(tmp_path, procs)
    procs[victim].send_signal(signal.SIGKILL)
    began = time.monotonic()
    survivor = procs[1 - victim]
    _, err = survivor.communicate(timeout=4 * PEER_TIMEOUT + 30)
    elapsed = time.monotonic() - began
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
      p.wait()
      p.stderr.close()
  assert survivor.returncode == 1, err
  assert elapsed < 2 * PEER_TIMEOUT + 10
  # One line of ours, in place of a traceback or JAX's fatal log and stack.
  assert 'Traceback' not in err
  assert 'detected fatal errors' not in err
  last = err.strip().splitlines()[-1]
  assert last.startswith(f'error: process {victim} of 2 sent no heartbeat')
  # The service outlived a killed process 0 by a grace period, not for good.
  deadline = time.monotonic() + PEER_TIMEOUT + 30
  while services(procs[0].address) and time.monotonic() < deadline:
    time.sleep(0.5)
  assert services(procs[0].address) == []


def test_detected_cluster_needs_two_or_more_processes():
  assert distributed.detected_cluster({}) is None
  slurm = {'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '1'}
  assert distributed.detected_cluster(slurm) is None
  assert distributed.detected_cluster({**slurm, 'SLURM_NTASKS': '4'}) == 'SLURM'
  mpi = {'OMPI_MCA_orte_hnp_uri': 'x', 'OMPI_COMM_WORLD_SIZE': '2'}
  assert distributed.detected_cluster(mpi) == 'Open MPI'
  tpu = {'TPU_WORKER_HOSTNAMES': 'a,b'}
  assert distributed.detected_cluster(tpu) == 'Cloud TPU'
  assert distributed.detected_cluster({'TPU_WORKER_HOSTNAMES': 'a'}) is None


def test_incomplete_distributed_flags_exit_with_one_line(tmp_path):
  [p] = start(tmp_path, 4, 1, 1, '--num_processes=2')
  _, err = p.communicate(timeout=300)
  assert p.returncode == 1
  assert 'Traceback' not in err
  last = err.strip().splitlines()[-1]
  assert last.startswith('error: --coordinator_address, --num_processes and')
  assert not (tmp_path / 'metrics.jsonl').exists()


def test_a_coordinator_port_in_use_is_one_line_from_process_zero(tmp_path):
  with socket.socket() as taken:
    taken.bind(('localhost', 0))
    taken.listen()
    port = taken.getsockname()[1]
    env = conftest.subprocess_env(JAX_NUM_CPU_DEVICES='1')
    p = subprocess.run(
        command(tmp_path, 4)
        + [
            f'--coordinator_address=localhost:{port}',
            '--num_processes=2',
            '--process_id=0',
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
  assert p.returncode == 1, p.stderr
  assert 'Traceback' not in p.stderr
  last = p.stderr.strip().splitlines()[-1]
  assert last.startswith(
      f'error: could not join the distributed run at localhost:{port}'
  ), p.stderr
  assert 'coordination service did not start' in last
  assert not (tmp_path / 'metrics.jsonl').exists()
