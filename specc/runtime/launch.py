"""torchrun for `specc train` (and its ensemble members and tune trials) when training.devices > 1.

`python -m specc.runtime.launch N TRAIN.PY ARGS...` is `torchrun --standalone --nproc-per-node=N
TRAIN.PY ARGS...`, run through torchrun's own entry point (`torch.distributed.run.main`) in this
process, so that specc can say what happened in its own words:

- the training script's exit status is this process's (2 bad data, 3 nan, 130 interrupted...),
  the first failed process's, where torchrun itself exits 1 with a traceback for any of them;
- torchrun's log lines (its OMP_NUM_THREADS banner, its failure report) are not shown: this
  module sets OMP_NUM_THREADS (threads per process) itself and prints one line when a process
  fails without a status of train.py's own;
- a SIGTERM (or SIGINT, turned into SIGTERM here) reaches torchrun's agent, which passes it to
  every process (they run in sessions of their own, so a Ctrl-C reaches them only so); rank 0
  writes last.pt, each exits 130, and so does this. A process still importing torch ends
  silently (SIGTERM's default), before train.py arms its handlers.

The gloo backend of a standalone (one machine) run talks over the loopback interface
(GLOO_SOCKET_IFNAME=lo unless set). Multi-node training is torchrun's own command line on the
generated train.py (docs/training.md, "Several processes").
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

OWN_STATUSES = frozenset({0, 2, 3, 130})
"""Exit statuses that train.py explains itself, on its stderr, before it ends."""


def command(train_py: Path, args: list[str], devices: int) -> list[str]:
    """The command that trains: `python train.py ARGS` for one process, else this module."""
    if devices == 1:
        return [sys.executable, str(train_py), *args]
    return [sys.executable, "-m", "specc.runtime.launch", str(devices), str(train_py), *args]


def threads_per_process(devices: int) -> int:
    """This machine's CPUs (those this process may use) shared out between the processes."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // devices)


def run(devices: int, train_py: str, args: list[str]) -> int:
    """Run torchrun's agent with `devices` processes of train_py; the exit status to report."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_process(devices)))
    if Path("/sys/class/net/lo").exists():
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    os.environ.setdefault("TORCHELASTIC_SIGNALS_TO_HANDLE", "SIGTERM,SIGHUP,SIGQUIT")
    if signal.getsignal(signal.SIGINT) != signal.SIG_IGN:  # ignored: specc relays SIGTERM

        def relay(signum: int, frame: object) -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGINT, relay)
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    for name in list(logging.root.manager.loggerDict):  # the agent's log lines
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    argv = ["--standalone", f"--nproc-per-node={devices}", train_py, *args]
    try:
        torchrun(argv)
    except SignalException:
        return 130
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        status = failure.exitcode if failure.exitcode >= 0 else 128 - failure.exitcode
        if status not in OWN_STATUSES:
            print(
                f"specc train: process {rank} of {devices} ended with status {status}; "
                "the others were stopped",
                file=sys.stderr,
            )
        return status
    return 0


def main(argv: list[str]) -> int:
    """`launch N TRAIN.PY ARGS...`: see the module docstring."""
    if len(argv) < 2 or not argv[0].isdigit() or int(argv[0]) < 1:
        print("usage: python -m specc.runtime.launch N TRAIN.PY [ARGS...]", file=sys.stderr)
        return 2
    return run(int(argv[0]), argv[1], argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
