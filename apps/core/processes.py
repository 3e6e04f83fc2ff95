"""Stopping a process with everything it started (Linux /proc; elsewhere only the process itself).

A django-q2 cluster is a parent with worker children. Killing only the parent when it does
not stop in time leaves the workers running as orphans, still holding the terminal's (or a
test's) output pipe, so whoever waits for that output waits forever.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1  # linux/prctl.h
# A node agent's workers get this long to finish their current task after SIGTERM; whatever
# starts an agent (runlocal, serve) waits longer than this for it.
AGENT_STOP_SECONDS = 25


def descendants(pid: int) -> list[int]:
    """The ids of every process below `pid` (children first), read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # the field after the command name
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the process and all its descendants (found before the parent dies and they are re-parented)."""
    for pid in [process.pid, *descendants(process.pid)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


def run_together(commands: dict[str, list[str]], *, stop_seconds: float) -> list[str]:
    """Run `commands` side by side until SIGINT or SIGTERM, or until one of them ends; then stop them all.

    Each runs in a process group of its own, so Ctrl-C in a terminal (SIGINT to the foreground
    group) reaches only this process, which stops each child in order with SIGTERM: a gunicorn
    master drains its workers, a node agent stops its worker clusters (signalled directly, all
    at once, those break their own shutdown). Whatever is left after `stop_seconds` is killed,
    group by group. If this process itself is killed, each child gets SIGTERM from the kernel.
    Returns the names of the commands that ended on their own (empty when a signal stopped them).
    """
    stopping = []
    # Before starting anything: a signal that comes while they start must stop them too.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.append(True))
    processes: dict[str, subprocess.Popen] = {}
    ended: list[str] = []
    try:
        for name, argv in commands.items():
            processes[name] = subprocess.Popen(argv, process_group=0, preexec_fn=_terminated_with(os.getpid()))  # noqa: S603
        while not stopping and not ended:
            ended = [name for name, process in processes.items() if process.poll() is not None]
            time.sleep(0.2)
    finally:
        stop_groups(list(processes.values()), seconds=stop_seconds)
    return [] if stopping else ended


def stop_groups(processes: list[subprocess.Popen], *, seconds: float) -> None:
    """SIGTERM to each process, then, after `seconds` at most, SIGKILL to each one's whole group."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + seconds
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # the group: workers an ended parent left behind
        if process.poll() is None:
            kill_tree(process)  # one that left its group: none may linger as an orphan


def _terminated_with(parent: int):
    """A preexec_fn: the child gets SIGTERM when `parent` dies (Linux), as if it had been stopped in order."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died between the fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return arm
