"""What `make run` starts: the web server (gunicorn) and a node agent together; Ctrl-C or SIGTERM stops both."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.processes import alive, descendants_running, group_members, start, stop

ROOT = Path(__file__).resolve().parents[1]

ENQUEUE_AND_WAIT = """
import time
from django_q.tasks import async_task, result
task_id = async_task("math.floor", 2.5)
for _ in range(120):
    if result(task_id) is not None:
        break
    time.sleep(0.25)
print("RESULT", result(task_id))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, seconds: float = 60) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a localhost URL)
                return response.status
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds}s")


def _create_token(port: int, name: str) -> int:
    body = json.dumps({"username": "demo", "password": "demo", "name": name}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/auth/tokens/", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (a localhost URL)
        return response.status


@pytest.fixture(params=["orm", "redis"])
def local_env(request, tmp_path):
    """A migrated, seeded installation in `tmp_path`, on the ORM broker or this run's Redis database."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'lepton.sqlite3'}", LEPTON_VAR_DIR=str(tmp_path))
    if request.param == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    manage = [sys.executable, "manage.py"]
    for args in (["migrate", "--noinput"], ["seed_demo"]):
        subprocess.run([*manage, *args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=180)
    return env


# In a terminal, Ctrl-C signals the foreground job's whole group. Started in the background
# (`make run &`, nohup, a service manager), SIGINT is ignored and SIGTERM to the process stops it.
STOPS = {"orm": ("foreground", signal.SIGINT), "redis": ("background", signal.SIGTERM)}


def test_runlocal_serves_pages_runs_tasks_and_stops_on_ctrl_c_or_sigterm(local_env, request):
    how, sig = STOPS[request.node.callspec.params["local_env"]]
    port = _free_port()
    stack = start(local_env, "runlocal", f"127.0.0.1:{port}", sigint_ignored=how == "background")
    try:
        assert _wait_for(f"http://127.0.0.1:{port}/login/") == 200
        # Writes from both web workers at once (each token is a row; SQLite: WAL and the busy timeout).
        with ThreadPoolExecutor(8) as pool:
            created = list(pool.map(lambda n: _create_token(port, f"laptop-{n}"), range(8)))
        assert created == [201] * 8
        worker = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", ENQUEUE_AND_WAIT],
            cwd=ROOT,
            env=local_env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert "RESULT 2" in worker.stdout, worker.stdout + worker.stderr
        children = descendants_running(stack, "qcluster")  # gunicorn and its workers, the agent and its clusters
    finally:
        if how == "foreground":
            os.killpg(stack.pid, sig)  # what Ctrl-C in a terminal does
        else:
            stack.send_signal(sig)  # to runlocal alone: it must stop the web server and node agent itself
        try:
            output = stack.communicate(timeout=90)[0].decode()
        finally:
            stop(stack)
    assert stack.returncode == 0, output
    assert group_members(stack) == [], "processes left running"
    assert alive(children) == [], "children left running"
