"""The periodic cleanup: temp files that killed processes left behind go once they are old enough.

One test kills a real web server mid-upload and shows its temp file lands in Lepton's own
folder (not $TMPDIR, where nothing would find it) and that `manage.py cleanup` removes it.
"""

import os
import signal
import socket
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from apps.core.cleanup import cleanup_run, stale_files_remove
from apps.core.storage import scratch_dir, scratch_path
from apps.core.uploads import upload_temp_dir
from tests.processes import lepton_env, manage, start, stop, wait_until

SETUP = """
from django.contrib.auth import get_user_model
from apps.accounts.services import team_create
from apps.accounts.tokens import token_create
from apps.datasets.models import Dataset
user = get_user_model().objects.create_user("uploader", password="uploader-password-123")
team = team_create(creator=user, name="Uploads", slug="uploads")
dataset = Dataset.objects.create(team=team, name="big", task="tabular_classification", created_by=user)
print(dataset.pk, token_create(user=user, name="upload")[1])
"""


@pytest.fixture(autouse=True)
def _upload_temp_in_tmp(settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")


def _age(path: Path, hours: float) -> Path:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))
    return path


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_stale_temp_files_go_and_fresh_ones_stay(db, settings):
    max_age = settings.LEPTON_TEMP_FILE_MAX_AGE_HOURS
    uploads, scratch = upload_temp_dir(), scratch_dir()
    assert scratch == Path(settings.MEDIA_ROOT) / ".tmp"
    (uploads / "killed.upload.zip").write_bytes(b"x" * 1000)
    (uploads / "streaming.upload.zip").write_bytes(b"y" * 1000)
    (scratch / "killed.safetensors").write_bytes(b"z" * 1000)
    with scratch_path(".pt") as in_use:
        _age(uploads / "killed.upload.zip", max_age + 1)
        _age(scratch / "killed.safetensors", max_age + 1)
        _age(uploads / "streaming.upload.zip", max_age - 1)

        out = StringIO()
        call_command("cleanup", stdout=out)

        assert "upload temp files: 1 removed" in out.getvalue()
        assert "scratch files: 1 removed" in out.getvalue()
        assert _files(uploads) == ["streaming.upload.zip"]
        assert _files(scratch) == [in_use.name]


def test_the_threshold_is_a_setting(db, settings):
    old = scratch_dir() / "two-hours-old.pt"
    old.write_bytes(b"x")
    _age(old, 2)

    settings.LEPTON_TEMP_FILE_MAX_AGE_HOURS = 3
    assert cleanup_run()["scratch files"] == 0
    settings.LEPTON_TEMP_FILE_MAX_AGE_HOURS = 1
    assert cleanup_run()["scratch files"] == 1
    assert not old.exists()


def test_cleanup_never_follows_a_link_out_of_the_temp_folder(tmp_path):
    outside = tmp_path / "precious.csv"
    outside.write_text("keep me")
    folder = tmp_path / "temp"
    folder.mkdir()
    (folder / "link.csv").symlink_to(outside)
    _age(outside, 100)

    assert stale_files_remove(folder, older_than=timedelta(hours=1)) == 0
    assert outside.read_text() == "keep me"


def test_the_cleanup_runs_every_hour(db):
    schedule = Schedule.objects.get(name="core: cleanup")
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == ("apps.core.tasks.run_cleanup", "H", -1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_upload(port: int, dataset: str, token: str, declared: int) -> socket.socket:
    """Send the headers and the first MiB of a multipart upload that declares `declared` bytes; keep it open."""
    boundary = "leakboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    length = len(head) + declared + len(f"\r\n--{boundary}--\r\n")
    request = (
        f"POST /api/v1/datasets/{dataset}/versions/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(request + head + b"a,b\n" * (1024 * 1024 // 4))
    return client


def test_a_web_server_killed_mid_upload_leaves_its_temp_file_where_the_cleanup_removes_it(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    env = lepton_env(site, LEPTON_TEMP_FILE_MAX_AGE_HOURS="1")
    dataset, token = manage(env, "shell", "-c", SETUP).strip().splitlines()[-1].split()
    uploads = site / "tmp" / "uploads"  # FILE_UPLOAD_TEMP_DIR under LEPTON_VAR_DIR
    port = _free_port()
    web = start(env, "runserver", f"127.0.0.1:{port}", "--noreload")
    client = None
    try:
        wait_until(lambda: _connects(port), seconds=60, what="the web server")
        client = _start_upload(port, dataset, token, declared=8 * 1024 * 1024)
        wait_until(lambda: _partial_upload(uploads), seconds=60, what="a temp file of the upload in progress")
    finally:
        stop(web, signal.SIGKILL)  # killed mid-upload: its finally never runs
        if client is not None:
            client.close()

    [leftover] = _partial_upload(uploads)
    _age(leftover, 2)
    assert "upload temp files: 1 removed" in manage(env, "cleanup")
    assert not leftover.exists()


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def _partial_upload(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return [p for p in folder.iterdir() if p.is_file() and p.stat().st_size > 0]
