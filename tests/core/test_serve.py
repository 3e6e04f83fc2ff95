"""`make serve`: gunicorn and a node agent with production settings; static files through whitenoise's manifest."""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.processes import ROOT, alive, descendants_running, group_members, lepton_env, manage, start, stop, wait_until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (a localhost URL)
            return response.status, dict(response.headers), response.read().decode(errors="replace")
    except OSError:
        return None


def _production_env(tmp_path, **extra) -> dict:
    return lepton_env(
        tmp_path,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",  # plain HTTP on loopback; a TLS proxy stands in front in production
        LEPTON_STATIC_ROOT=str(tmp_path / "static"),
        **extra,
    )


def test_serve_answers_pages_and_hashed_static_files_and_sigterm_stops_every_process(tmp_path):
    port = _free_port()
    env = _production_env(tmp_path, LEPTON_BIND=f"127.0.0.1:{port}", LEPTON_WEB_WORKERS="2")
    manage(env, "collectstatic", "--noinput")  # what `make serve` runs before `serve`
    stack = start(env, "serve")
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz"), seconds=90, what="/healthz")
        status, _, page = _get(f"http://127.0.0.1:{port}/login/")
        assert status == 200
        stylesheet = re.search(r'href="(/static/css/lepton\.[0-9a-f]{12}\.css)"', page)
        assert stylesheet, "the page does not link the stylesheet by its hashed name"
        status, headers, css = _get(f"http://127.0.0.1:{port}{stylesheet[1]}")
        assert status == 200
        assert "immutable" in headers["Cache-Control"]  # whitenoise: a hashed name never changes
        assert css == (ROOT / "static" / "css" / "lepton.css").read_text()
        children = descendants_running(stack, "qcluster")  # gunicorn and its workers, the agent and its clusters
        assert any("gunicorn" in Path(f"/proc/{pid}/cmdline").read_text() for pid in children)
        stack.send_signal(signal.SIGTERM)
        output = stack.communicate(timeout=90)[0].decode()
    finally:
        stop(stack)
    assert stack.returncode == 0, output
    assert "node local stopped" in output  # the agent stopped in order, not killed
    assert group_members(stack) == [], "processes left running"
    assert alive(children) == [], "children left running"


def test_debug_off_without_collectstatic_fails_at_start_with_a_clear_message(tmp_path):
    env = _production_env(tmp_path)
    served = subprocess.run(
        [sys.executable, "manage.py", "serve", "--no-node-agent", "--bind", f"127.0.0.1:{_free_port()}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert served.returncode == 1
    assert "static files manifest" in served.stderr
    assert "collectstatic --noinput" in served.stderr
    # gunicorn started by hand (not through `serve`): the WSGI module refuses to load, so it exits at start.
    bare = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "lepton_web.wsgi",
            "--no-control-socket",
            "--bind",
            f"127.0.0.1:{_free_port()}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bare.returncode != 0
    assert "collectstatic --noinput" in bare.stderr


def test_children_stop_when_serve_itself_is_killed(tmp_path):
    port = _free_port()
    env = lepton_env(tmp_path, LEPTON_WEB_WORKERS="1", LEPTON_SERVE_NODE_AGENT="0", LEPTON_BIND=f"127.0.0.1:{port}")
    stack = start(env, "serve")
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz"), seconds=90, what="/healthz")
        children = descendants_running(stack, "gunicorn")
        assert not any("node_agent" in Path(f"/proc/{pid}/cmdline").read_text() for pid in children)
        os.kill(stack.pid, signal.SIGKILL)  # no chance to stop them: the kernel sends them SIGTERM
        wait_until(lambda: not alive(children), seconds=45, what="gunicorn gone after serve was killed")
    finally:
        stop(stack)
