"""JAX's coordination service, run in a child process of process 0.

`python -m train._coordination_service ARGS PARENT GRACE` starts the service
`jax.distributed.initialize` would start inside process 0 (ARGS: the JSON
`[args, kwargs]` of `get_distributed_runtime_service`) and serves until
stopped (SIGTERM: process 0's normal shutdown, after every client left) or
until GRACE seconds after its parent, process 0, is gone. The grace outlasts
the peers' watchdog timeout, so when process 0 dies the others notice its
silence and stop with one line, instead of seeing the service vanish with it
(which JAX's client answers with a fatal log line and an abort). It prints
'ready' once serving, or the error that stopped it from starting.
"""

import json
import os
import signal
import sys
import threading


def main(argv) -> None:
  args, kwargs = json.loads(argv[1])
  parent, grace = int(argv[2]), float(argv[3])
  from jax._src.lib import _jax

  try:
    service = _jax.get_distributed_runtime_service(*args, **kwargs)
  except Exception as e:  # E.g. the port is taken: process 0 reports it.
    print(f'{type(e).__name__}: {str(e).strip()[:300]}', flush=True)
    os._exit(1)
  print('ready', flush=True)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 1)  # Process 0 may die: no pipe to write into.
  stop = threading.Event()
  signal.signal(signal.SIGTERM, lambda *_: stop.set())
  while os.getppid() == parent and not stop.wait(0.5):
    pass
  if not stop.is_set():  # Process 0 died: give the peers time to notice.
    stop.wait(grace)
  del service  # Its destructor closes the server.
  sys.stdout.flush()
  os._exit(0)


if __name__ == '__main__':
  main(sys.argv)
