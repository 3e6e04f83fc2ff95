"""Running Lepton's own processes (web server, qcluster) in tests, against a throwaway SQLite file."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def start(env: dict, *args: str) -> subprocess.Popen:
    """A manage.py command in its own process group (so it and its children can be signalled)."""
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


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
