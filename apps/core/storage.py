"""Storing artifacts: write to a temp place first, then move into Django's storage.

With the default FileSystemStorage the temp place is inside MEDIA_ROOT, so the move is
an atomic rename and a crash never leaves a half-written artifact under its final name.
Other storages (S3-compatible) get a single upload of the finished file.
"""

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage


def _is_local() -> bool:
    return isinstance(default_storage, FileSystemStorage)


def scratch_dir() -> Path:
    """A directory for temp files on the same filesystem as the storage (when local)."""
    base = Path(settings.MEDIA_ROOT) / ".tmp" if _is_local() else Path(tempfile.gettempdir()) / "lepton"
    base.mkdir(parents=True, exist_ok=True)
    return base


@contextmanager
def scratch_path(suffix: str = ""):
    """A temp file path that is removed on exit unless it was moved away."""
    fd, name = tempfile.mkstemp(suffix=suffix, dir=scratch_dir())
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def store_file(local: Path, name: str) -> str:
    """Move a finished local file into storage under `name` (replacing nothing); returns the name."""
    if _is_local():
        target = Path(default_storage.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise FileExistsError(name)
        os.replace(local, target)
        return name
    with local.open("rb") as handle:
        stored = default_storage.save(name, File(handle))
    local.unlink(missing_ok=True)
    return stored


def local_path(name: str) -> Path:
    """A local path to read a stored file (memory-mapping needs one).

    Filesystem storage: the file itself. Other storages: a cached copy under
    LEPTON_CACHE_DIR, downloaded once (artifact names are never reused).
    """
    if _is_local():
        return Path(default_storage.path(name))
    cached = Path(settings.LEPTON_CACHE_DIR) / name
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(name, "rb") as source, scratch_path() as partial:
            with partial.open("wb") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)
            os.replace(partial, cached)
    return cached


def delete_stored(*names: str) -> None:
    """Delete stored files; missing ones are fine (deletion is retried after crashes)."""
    for name in names:
        if name:
            default_storage.delete(name)
