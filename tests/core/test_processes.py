"""kill_tree stops a process and what it started, so no orphan keeps an output pipe open."""

import subprocess
import sys
import time
from pathlib import Path

from apps.core.processes import descendants, kill_tree

# A parent that starts a child; both would sleep for ten minutes, both hold the parent's stdout.
SPAWNER = (
    "import subprocess, sys, time;"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
    "time.sleep(600)"
)


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has already died
    except OSError:
        return False


def test_kill_tree_kills_the_children_too_so_the_output_pipe_closes():
    parent = subprocess.Popen([sys.executable, "-c", SPAWNER], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not descendants(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    children = descendants(parent.pid)
    assert children, "the child never started"

    kill_tree(parent)

    assert parent.communicate(timeout=10)[0] == b""  # EOF: nothing holds the pipe any more
    time.sleep(0.2)
    assert not any(_alive(pid) for pid in children)
