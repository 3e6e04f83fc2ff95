"""What `make run` starts: the web server and a django-q2 worker together; Ctrl-C stops both."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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


def _redis_url() -> str:
    """Redis for the broker test: LEPTON_TEST_REDIS_URL (CI sets it), else a local server if one answers."""
    url = os.environ.get("LEPTON_TEST_REDIS_URL")
    if url:
        return url
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("no Redis on 127.0.0.1:6379 and LEPTON_TEST_REDIS_URL is not set")
    return "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["orm", "redis"])
def local_env(request, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'lepton.sqlite3'}", LEPTON_VAR_DIR=str(tmp_path))
    if request.param == "redis":
        env["REDIS_URL"] = _redis_url()
    manage = [sys.executable, "manage.py"]
    for args in (["migrate", "--noinput"], ["seed_demo"]):
        subprocess.run([*manage, *args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=180)
    return env


def test_runlocal_serves_pages_runs_tasks_and_stops_on_ctrl_c(local_env):
    port = _free_port()
    stack = subprocess.Popen(
        [sys.executable, "manage.py", "runlocal", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=local_env,
        start_new_session=True,  # its own process group, like a terminal's foreground job
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert _wait_for(f"http://127.0.0.1:{port}/login/") == 200
        worker = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", ENQUEUE_AND_WAIT],
            cwd=ROOT,
            env=local_env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert "RESULT 2" in worker.stdout, worker.stdout + worker.stderr
    finally:
        os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output = stack.communicate(timeout=90)[0].decode()
    assert stack.returncode == 0, output
    leftovers = subprocess.run(["pgrep", "-g", str(stack.pid)], capture_output=True, text=True).stdout
    assert leftovers.strip() == "", f"processes left running: {leftovers}"
