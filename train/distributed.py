"""Training on several processes: JAX's distributed runtime, and a watchdog.

`initialize` starts `jax.distributed` from the CLI's flags, or where JAX finds
the cluster itself (SLURM, Open MPI, Cloud TPU), before any device is touched;
after it `jax.devices()` spans every process. A `_Watchdog` thread per process
beats through the runtime's key-value store and ends the run with one line
when a peer goes silent or fails, since a collective waiting on a dead peer
never returns (JAX's own heartbeat check, set to twice as long, aborts the
process with its own log lines instead). The runtime's service, which JAX
hosts in process 0, runs in a child process of it instead, so that when
process 0 dies the others see it fall silent and stop with the same one line
(see `_service_in_child`).
"""

import contextlib
import json
import os
import subprocess
import sys
import threading
import time

from absl import flags

flags.DEFINE_string(
    'coordinator_address',
    None,
    'host:port of process 0, reachable from all (with --num_processes and'
    ' --process_id: jax.distributed.initialize).',
)
flags.DEFINE_integer('num_processes', None, 'Processes in the run.')
flags.DEFINE_integer('process_id', None, 'This process: 0 .. num_processes-1.')
flags.DEFINE_list('local_device_ids', None, 'Local devices to use (GPUs).')
flags.DEFINE_bool(
    'distributed',
    None,
    'Join a multi-process run JAX finds itself (Cloud TPU pods); default:'
    ' when SLURM, Open MPI or TPU variables name 2+ processes.',
)
flags.DEFINE_integer(
    'peer_timeout',
    60,
    'Seconds a process of a multi-process run may be silent before the others'
    ' stop (one line, exit 1).',
    lower_bound=2,
)
FLAGS = flags.FLAGS
_BEAT = 'jaxbp/beat/'  # + process id: a counter, 'done' or 'failed'.
_watchdog = None


def detected_cluster(env=os.environ) -> str | None:
  """The cluster JAX's `initialize()` can read itself, if of 2+ processes."""
  if 'SLURM_JOB_ID' in env and int(env.get('SLURM_NTASKS', '1')) > 1:
    return 'SLURM'
  if (
      'OMPI_MCA_orte_hnp_uri' in env
      and int(env.get('OMPI_COMM_WORLD_SIZE', '1')) > 1
  ):
    return 'Open MPI'
  tpu_hosts = env.get('TPU_WORKER_HOSTNAMES', '').split(',')
  if env.get('MEGASCALE_COORDINATOR_ADDRESS') or len(tpu_hosts) > 1:
    return 'Cloud TPU'
  return None


def initialize() -> None:
  """Joins the run the flags (or the cluster) describe; one process: no-op.

  Raises a one-line ValueError when the flags are incomplete or the others
  do not connect within JAX's initialization timeout (300 s).
  """
  given = (FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  auto = FLAGS.distributed
  if auto is None:
    auto = detected_cluster() is not None
  if given == (None, None, None) and not auto:
    return
  if None in given and not auto:
    raise ValueError(
        '--coordinator_address, --num_processes and --process_id go together'
        ' (or pass --distributed where JAX finds them: SLURM, Open MPI, Cloud'
        ' TPU); pass all three.'
    )
  import jax  # Only now: the flags are parsed, no device touched yet.

  # Gloo runs the cross-process collectives of CPU devices (tests, laptops).
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  ids = FLAGS.local_device_ids
  try:
    with _service_in_child(grace=FLAGS.peer_timeout + 15):
      jax.distributed.initialize(
          *given,
          local_device_ids=None if ids is None else [int(i) for i in ids],
          heartbeat_timeout_seconds=2 * FLAGS.peer_timeout + 10,
      )
  except Exception as e:  # XlaRuntimeError: DEADLINE_EXCEEDED, refused...
    first = (str(e).strip().splitlines() or [''])[0][:200]
    raise ValueError(
        f'could not join the distributed run at {given[0] or "(detected)"}'
        f' ({type(e).__name__}: {first}); start every process with the same'
        ' --coordinator_address and --num_processes, each its own'
        ' --process_id.'
    ) from None
  if jax.process_count() > 1:
    global _watchdog
    me, count = jax.process_index(), jax.process_count()
    _watchdog = _Watchdog(_client(), me, count, FLAGS.peer_timeout)
    _watchdog.start()


@contextlib.contextmanager
def _service_in_child(grace: float):
  """Makes process 0's `jax.distributed.initialize` host the service apart.

  JAX starts the runtime's coordination service inside process 0; when that
  process dies, the others' clients lose the service at once and abort with
  a fatal log line and a C++ stack trace. Started instead in a child process
  (`train._coordination_service`) that outlives process 0 by `grace` seconds,
  the service stays up while the peers' watchdogs see process 0 fall silent
  and stop with one line. The factory `jax.distributed.initialize` calls
  (jax 0.7.2 to 0.10) is wrapped for the duration of the call; the object it
  returns stands for the service in `jax.distributed.shutdown`.
  """
  from jax._src import distributed as jax_distributed

  lib = jax_distributed._jax
  factory = lib.get_distributed_runtime_service

  def service(*args, **kwargs):
    return _ServiceProcess(args, kwargs, grace)

  lib.get_distributed_runtime_service = service
  try:
    yield
  finally:
    lib.get_distributed_runtime_service = factory


class _ServiceProcess:
  """The coordination service's child process; `shutdown()` stops it."""

  def __init__(self, args, kwargs, grace: float):
    self.process = subprocess.Popen(
        [
            sys.executable,
            '-m',
            'train._coordination_service',
            json.dumps([list(args), kwargs]),
            str(os.getpid()),
            str(grace),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,  # 'ready', or why it could not start.
        stderr=subprocess.DEVNULL,  # Not the run's pipes: it may outlive us.
        start_new_session=True,  # A Ctrl-C to the run is not for it.
        text=True,
    )
    with self.process.stdout:
      line = self.process.stdout.readline().strip()
    if line != 'ready':
      self.process.wait()
      raise RuntimeError(f'the coordination service did not start: {line}')

  def shutdown(self) -> None:
    self.process.terminate()
    self.process.wait()


def _client():
  from jax._src import distributed  # Orbax reaches the client the same way.

  return distributed.global_state.client


class _Watchdog(threading.Thread):
  """Beats once a second; ends this process when a peer fails or is silent."""

  def __init__(self, client, me: int, count: int, timeout: int):
    super().__init__(name='jaxbp-watchdog', daemon=True)
    self.client, self.me, self.count = client, me, count
    self.timeout = timeout
    self.stopped = threading.Event()

  def run(self) -> None:
    seen = {p: (None, time.monotonic()) for p in range(self.count)}
    del seen[self.me]
    beat = 0
    while not self.stopped.wait(1.0):
      beat += 1
      try:
        self.client.key_value_set(
            f'{_BEAT}{self.me}', str(beat), allow_overwrite=True
        )
        for peer in list(seen):
          self._check(peer, seen)
      except Exception as e:  # The coordinator (process 0) is gone.
        if not self.stopped.is_set():
          first = (str(e).strip().splitlines() or [''])[0][:120]
          _die(f'lost the coordinator, process 0 ({first})')

  def _check(self, peer: int, seen: dict) -> None:
    try:
      value = self.client.key_value_try_get(f'{_BEAT}{peer}')
    except Exception:  # Not beating yet (NOT_FOUND): still starting up.
      value = None
    if value == 'done':
      del seen[peer]
    elif value == 'failed':
      _die(f'process {peer} of {self.count} stopped with an error')
    elif value != seen[peer][0]:
      seen[peer] = (value, time.monotonic())
    elif time.monotonic() - seen[peer][1] > self.timeout:
      _die(
          f'process {peer} of {self.count} sent no heartbeat for'
          f' {self.timeout} s (it died or hangs)'
      )


def _die(reason: str) -> None:
  """One line, then exit 1 at once: the main thread may wait forever."""
  if _watchdog is not None and _watchdog.stopped.is_set():
    return
  print(
      f'error: {reason}; stopped this process too. Rerun every process with'
      ' the same command: the run resumes from its last checkpoint.',
      file=sys.stderr,
      flush=True,
  )
  os._exit(1)


def failed(error: BaseException) -> None:
  """Tells the peers this process failed, once sure it is not their fault.

  A runtime error may be a collective whose peer died (gloo raises then):
  the watchdog gets the time to name that peer first.
  """
  import jax

  if _watchdog is None:
    return
  if isinstance(error, jax.errors.JaxRuntimeError):
    time.sleep(_watchdog.timeout + 3)
  finish(ok=False)


def exit_now(code: int, line: str) -> None:
  """Multi-process: prints `line`, exits now (skips JAX's shutdown barrier)."""
  if _watchdog is not None:  # The barrier would wait for peers maybe gone.
    print(line, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(code)


def finish(ok: bool = True) -> None:
  """Tells the peers this process ended (`ok`) or failed; stops beating.

  After a good end every process leaves the runtime together (JAX's shutdown
  barrier), then process 0 stops the service's child process.
  """
  if _watchdog is None or _watchdog.stopped.is_set():
    return
  _watchdog.stopped.set()
  _watchdog.join()
  with contextlib.suppress(Exception):  # No coordinator: nobody to tell.
    status = 'done' if ok else 'failed'
    _client().key_value_set(f'{_BEAT}{_watchdog.me}', status, True)
  if ok:
    import jax

    jax.distributed.shutdown()


def is_primary() -> bool:
  """Whether this process writes the run's files and prints its lines."""
  import jax

  return jax.process_index() == 0


def sync(name: str) -> None:
  """Waits until every process got here (no-op with one process)."""
  import jax
  from jax.experimental import multihost_utils

  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def put_replicated(tree, sharding):
  """`jax.device_put(tree, sharding)` that also takes PRNG key arrays.

  Every process holds the same values (the whole data split, the initial
  state), so each puts them on its own devices of the global sharding; a key
  array goes as its raw data, which `device_put` takes across processes.
  """
  import jax

  def put(x):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key
    ):
      data = jax.device_put(jax.random.key_data(x), sharding)
      return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    return jax.device_put(x, sharding)

  return jax.tree.map(put, tree)


def any_process(flag: bool) -> bool:
  """Whether `flag` holds on some process (no-op with one process)."""
  import jax
  import numpy as np
  from jax.experimental import multihost_utils

  if jax.process_count() == 1:
    return flag
  return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))
