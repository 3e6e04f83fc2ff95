"""The node agent stops on SIGTERM even when started as a background job (SIGINT ignored, as
`cmd &` and `nohup` leave it) and leaves no process behind; so do the processes tests start.
runlocal's case is in tests/test_runlocal.py."""

import signal
import sqlite3
import subprocess
import sys
import time

from tests.processes import group_members, lepton_env, start, stop, stop_all, wait_until


def _node_online(env, name: str) -> bool:
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"), timeout=20) as db:
        row = db.execute("SELECT status, last_heartbeat_at FROM nodes_node WHERE name = ?", (name,)).fetchone()
    return bool(row and row[0] == "online" and row[1])


def _stopped_by_sigterm(process) -> tuple[int, str]:
    """SIGTERM to the process alone (not its group: it must stop its own children), then wait."""
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0].decode(errors="replace")
    return process.returncode, output


def test_a_node_agent_started_in_the_background_stops_on_sigterm_and_goes_offline(tmp_path):
    env = lepton_env(tmp_path, LEPTON_WORKERS="1")
    agent = start(env, "node_agent", "--name", "bg", sigint_ignored=True)
    try:
        wait_until(lambda: _node_online(env, "bg"), seconds=60, what="the node online")
        returncode, output = _stopped_by_sigterm(agent)
        assert returncode == 0, output
        assert "node bg stopped" in output
        assert not _node_online(env, "bg")
        wait_until(lambda: not group_members(agent), seconds=10, what="its worker clusters gone")
    finally:
        stop(agent)


SLEEPER = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"


def test_stop_ends_a_process_that_ignores_sigint_at_once_and_leaves_nothing():
    deaf = subprocess.Popen([sys.executable, "-c", SLEEPER], start_new_session=True, stdout=subprocess.PIPE)
    started = time.monotonic()
    stop(deaf, timeout=30)
    assert deaf.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 10  # SIGTERM, not a wait for the timeout
    assert not group_members(deaf)


def test_the_end_of_the_run_kills_what_a_test_left_running(tmp_path):
    env = lepton_env(tmp_path)
    leftover = start(env, "shell", "-c", "import time; time.sleep(600)")
    wait_until(lambda: group_members(leftover), seconds=30, what="the process running")
    stop_all()  # what the session fixture in tests/conftest.py runs after the last test
    assert leftover.returncode is not None
    assert not group_members(leftover)
