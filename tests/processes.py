"""Running Lepton's own processes (web server, qcluster) in tests, against a throwaway SQLite file."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from apps.core.processes import descendants

ROOT = Path(__file__).resolve().parents[1]


def lepton_env(tmp_path: Path, **extra: str) -> dict:
    """Environment of a separate Lepton installation living in `tmp_path`, migrated."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'lepton.sqlite3'}",
        LEPTON_VAR_DIR=str(tmp_path),
        LEPTON_MEDIA_ROOT=str(tmp_path / "media"),
        **extra,
    )
    manage(env, "migrate", "--noinput")
    return env


def manage(env: dict, *args: str, timeout: float = 180) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# Every process `start` made, so the run's last fixture can kill any a test did not stop.
STARTED: list[subprocess.Popen] = []


# What a shell does to a background job: SIGINT ignored, then exec (the ignore survives exec).
SIGINT_IGNORED = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, 'manage.py', *sys.argv[1:]])"
)


def start(env: dict, *args: str, sigint_ignored: bool = False) -> subprocess.Popen:
    """A manage.py command in its own process group (so it and its children can be signalled).

    `sigint_ignored` starts it as a shell's background job (`cmd &`, `nohup`) would: with
    SIGINT ignored, which Python keeps, so only SIGTERM or SIGKILL can stop it.
    """
    launcher = [sys.executable, "-c", SIGINT_IGNORED] if sigint_ignored else [sys.executable, "manage.py"]
    process = subprocess.Popen(
        [*launcher, *args],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    STARTED.append(process)
    return process


def start_program(argv: list[str], env: dict | None = None) -> subprocess.Popen:
    """Any other program (a test's S3 server) the same way: own process group, output piped, registered."""
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    STARTED.append(process)
    return process


def group_members(process: subprocess.Popen) -> list[int]:
    """The pids still alive in the process group `start` gave `process` (zombies excluded)."""
    found = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found if _alive(int(pid))]


def descendants_running(process: subprocess.Popen, command: str, *, seconds: float = 120) -> list[int]:
    """Wait until a descendant of `process` runs `command` (a word of its command line); all descendants' pids.

    For commands that put their children in process groups of their own (runlocal, serve):
    `group_members` does not see those, so a test collects them while they run and checks
    `alive` after the stop.
    """

    def found():
        pids = descendants(process.pid)
        return pids if any(command in _command_line(pid) for pid in pids) else None

    return wait_until(found, seconds=seconds, what=f"a {command} process under {process.pid}")


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (zombies excluded)."""
    return [pid for pid in pids if _alive(pid)]


def _command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_all() -> None:
    """Kill the group of every started process that is still there (the end of a test run)."""
    for process in STARTED:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
            process.communicate(timeout=10)
    STARTED.clear()


def stop(process: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 30) -> str:
    """Stop a process started by `start`: `sig` to it, then SIGKILL to its whole group.

    SIGTERM goes to the process itself, which stops its own children in order (a node agent
    stops its worker clusters; signalled directly, their workers break the clusters' own
    shutdown). SIGKILL goes to the group at once (a machine that dies). Either way, whatever of
    the group is left when it ends, or after `timeout`, is killed: nothing outlives the test.
    """
    with contextlib.suppress(ProcessLookupError):
        if sig == signal.SIGKILL:
            os.killpg(process.pid, sig)
        else:
            os.kill(process.pid, sig)
    try:
        output = process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate(timeout=10)[0]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return output.decode(errors="replace")


def wait_until(predicate, *, seconds: float, interval: float = 0.3, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {seconds}s")


def wait_while_progressing(measure, *, done, stall_seconds: float, interval: float = 0.3, what: str = "work"):
    """Wait until `done(measure())`, failing only when `measure()` has not changed for `stall_seconds`.

    For work whose total time depends on how busy the machine is (20 jobs on two agents): a
    loaded machine makes it slower, not wrong, so the bound is on a stall, not on the total.
    """
    last, changed = None, time.monotonic()
    while True:
        value = measure()
        if done(value):
            return value
        if value != last:
            last, changed = value, time.monotonic()
        elif time.monotonic() - changed > stall_seconds:
            raise AssertionError(f"{what}: no progress for {stall_seconds}s (stuck at {value})")
        time.sleep(interval)
