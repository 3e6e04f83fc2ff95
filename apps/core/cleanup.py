"""The periodic cleanup: what killed processes leave behind, and what apps register to expire.

A process killed mid-upload or mid-write (SIGKILL, OOM, a machine that dies) never runs its
`finally`: Django's upload temp file (in FILE_UPLOAD_TEMP_DIR) and our scratch files (in
`apps.core.storage.scratch_dir()`, `media/.tmp` on filesystem storage) stay. A file there that
nobody has written for LEPTON_TEMP_FILE_MAX_AGE_HOURS belongs to no live request or job: it goes.

Apps above core add their own steps (`register_cleanup`): the jobs app expires checkpoints.
`cleanup_run` is what the django-q schedule ("core: cleanup", hourly) and `manage.py cleanup` run.
"""

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings

from apps.core.storage import scratch_dir
from apps.core.uploads import upload_temp_dir

logger = logging.getLogger(__name__)
CleanupStep = Callable[[], int]  # removes what it owns; returns how many things went
_steps: dict[str, CleanupStep] = {}


def register_cleanup(name: str, step: CleanupStep) -> None:
    """Called by an app's `ready()`: `step` runs in every cleanup, after the temp folders."""
    _steps[name] = step


def stale_files_remove(folder: Path, *, older_than: timedelta) -> int:
    """Remove the files under `folder` not modified for `older_than` (never following links); returns how many."""
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for path in folder.rglob("*"):
        try:
            stat = path.lstat()
            if path.is_file() and not path.is_symlink() and stat.st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # its own process finished with it meanwhile
            continue
    return removed


def temp_folders() -> dict[str, Path]:
    """Where Lepton's temp files live, by what puts them there."""
    return {"upload temp files": upload_temp_dir(), "scratch files": scratch_dir()}


def cleanup_run() -> dict[str, int]:
    """One cleanup: stale temp files, then each registered step. Returns what went, by step."""
    max_age = timedelta(hours=settings.LEPTON_TEMP_FILE_MAX_AGE_HOURS)
    report = {name: stale_files_remove(folder, older_than=max_age) for name, folder in temp_folders().items()}
    for name, step in _steps.items():
        report[name] = step()
    if any(report.values()):
        logger.info("cleanup: %s", ", ".join(f"{count} {name}" for name, count in report.items()))
    return report
