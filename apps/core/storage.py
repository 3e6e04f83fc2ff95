"""Storing artifacts: write to a temp place first, then move into Django's storage.

With the default FileSystemStorage the temp place is inside MEDIA_ROOT, so the move is
an atomic rename and a crash never leaves a half-written artifact under its final name.
With S3-compatible storage (django-storages) the finished file goes up as one managed
multipart upload, streamed from disk, and readers get a local copy from a bounded cache.

Every artifact passes through here: `store_file` / `store_upload` write, `local_path` reads,
`delete_stored` deletes, `download_response` hands one to a user.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header

LOCKS = ".locks"  # beside the cached copies: one lock file per cached name
SCRATCH = ".tmp"  # beside the cached copies too, so a finished download is renamed into place


def _is_local() -> bool:
    return isinstance(default_storage, FileSystemStorage)


def scratch_dir() -> Path:
    """A directory for temp files on the same filesystem as the storage (local) or the cache (S3)."""
    base = Path(settings.MEDIA_ROOT if _is_local() else settings.LEPTON_CACHE_DIR) / SCRATCH
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
    _upload_to_bucket(local, name)
    local.unlink(missing_ok=True)
    return name


def store_upload(uploaded, name: str) -> str:
    """Store an uploaded file (Django streamed it to a temp file) under `name`; returns the stored name.

    Filesystem: moved into place. S3: sent from its temp file in parts, never whole in memory.
    """
    if _is_local() or not hasattr(uploaded, "temporary_file_path"):
        return default_storage.save(name, uploaded)  # a small in-memory upload is sent as it is
    _upload_to_bucket(Path(uploaded.temporary_file_path()), name)
    return name


def _upload_to_bucket(local: Path, name: str) -> None:
    """boto3's managed upload of a file on disk: multipart past the part size, each part read from
    the file as it is sent (its file-object upload would hold several parts in memory). Another
    kind of storage gets the file through its own `save`."""
    if default_storage.exists(name):
        raise FileExistsError(name)
    if not hasattr(default_storage, "transfer_config"):  # not S3 (e.g. an in-memory storage in tests)
        with local.open("rb") as handle:
            default_storage.save(name, File(handle))
        return
    default_storage.bucket.upload_file(str(local), name, Config=default_storage.transfer_config)


# --- Reading: the local cache --------------------------------------------------------------


def _cache_root() -> Path:
    return Path(settings.LEPTON_CACHE_DIR)


@contextmanager
def _name_lock(name: str, mode: int):
    """An flock on the lock file of one cached name (exclusive to fetch or evict, shared to read)."""
    folder = _cache_root() / LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(name.encode()).hexdigest()[:32]
    with (folder / key).open("a") as handle:
        fcntl.flock(handle, mode)
        yield


def local_path(name: str) -> Path:
    """A local path to read a stored file (memory-mapping needs one).

    Filesystem storage: the file itself. Other storages: a cached copy under LEPTON_CACHE_DIR,
    downloaded once (artifact names are never reused) under a per-name lock, so two workers on
    one machine asking at once download it once; the copy appears under its name only complete
    (temp file, then rename). Each use marks it recently used; the cache then sheds the least
    recently used copies past LEPTON_CACHE_MAX_BYTES. A copy already opened stays readable when
    evicted (POSIX unlink); hold `reading(name)` across a use that opens it later.
    """
    if _is_local():
        return Path(default_storage.path(name))
    cached = _cache_root() / name
    with _name_lock(name, fcntl.LOCK_SH):  # shared: a holder of `reading(name)` may ask again
        if cached.exists():
            os.utime(cached)
            return cached
    with _name_lock(name, fcntl.LOCK_EX):
        if cached.exists():  # another worker fetched it meanwhile
            os.utime(cached)
            return cached
        cache_trim(room=_stored_size(name))  # make room first: the cache never grows past its limit
        cached.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(name, "rb") as source, scratch_path() as partial:
            with partial.open("wb") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)
            os.replace(partial, cached)
    cache_trim(keep=name)  # another worker's fetch may have landed meanwhile
    return cached


def _stored_size(name: str) -> int:
    """The object's size; a missing one is FileNotFoundError, as on the filesystem."""
    from botocore.exceptions import ClientError

    try:
        return default_storage.size(name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            raise FileNotFoundError(name) from None
        raise


@contextmanager
def reading(name: str):
    """`local_path(name)`, kept from eviction until the block ends (a shared lock on its name)."""
    if _is_local():
        yield local_path(name)
        return
    while True:
        path = local_path(name)
        with _name_lock(name, fcntl.LOCK_SH):
            if path.exists():  # not evicted between the fetch and the lock (else: fetch again)
                yield path
                return


@contextmanager
def held(*names: str):
    """Every named file (blank names skipped) cached and kept from eviction while the block runs:
    for processes started inside it that open them later (data-parallel ranks)."""
    with contextlib.ExitStack() as stack:
        for name in filter(None, names):
            stack.enter_context(reading(name))
        yield


def _cached_copies() -> list[tuple[float, int, str]]:
    """(last use, size, name) of every complete copy in the cache."""
    root = _cache_root()
    copies = []
    for folder, dirs, files in os.walk(root):
        if folder == str(root):
            dirs[:] = [d for d in dirs if d not in {LOCKS, SCRATCH}]
        for file in files:
            path = Path(folder) / file
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                copies.append((max(stat.st_atime, stat.st_mtime), stat.st_size, str(path.relative_to(root))))
    return copies


def cache_trim(*, room: int = 0, keep: str | None = None) -> int:
    """Evict least recently used copies until the cache fits LEPTON_CACHE_MAX_BYTES with `room` to
    spare; returns how many went.

    A copy whose name is locked (being downloaded, or held through `reading`) is skipped, and so
    is `keep` (the one just fetched for a caller). A single file larger than the limit still gets
    cached: the limit is then exceeded by that file alone, while it is the newest.
    """
    copies = sorted(_cached_copies())
    total = sum(size for _, size, _ in copies)
    evicted = 0
    for _, size, name in copies:
        if total + room <= settings.LEPTON_CACHE_MAX_BYTES:
            break
        if name == keep:
            continue
        try:
            with _name_lock(name, fcntl.LOCK_EX | fcntl.LOCK_NB):
                (_cache_root() / name).unlink(missing_ok=True)
        except BlockingIOError:
            continue
        total -= size
        evicted += 1
    return evicted


def cache_bytes() -> int:
    """How much the local cache holds now."""
    return sum(size for _, size, _ in _cached_copies())


# --- Deleting and downloading -------------------------------------------------------------


def delete_stored(*names: str) -> None:
    """Delete stored files (and this machine's cached copies); missing ones are fine (deletion is retried)."""
    for name in names:
        if name:
            default_storage.delete(name)
            if not _is_local():
                (_cache_root() / name).unlink(missing_ok=True)


def download_response(name: str, *, filename: str):
    """A user's download of a stored file: served from disk, or a redirect to a presigned S3 URL.

    With S3 the bytes go from the bucket to the client and never through a web process.
    """
    if _is_local():
        return FileResponse(default_storage.open(name, "rb"), as_attachment=True, filename=filename)
    disposition = content_disposition_header(True, filename)
    return HttpResponseRedirect(default_storage.url(name, parameters={"ResponseContentDisposition": disposition}))


def inline_response(name: str, *, content_type: str):
    """A small stored file shown inside a page (a preview image), served by Django from either storage:
    the page's Content-Security-Policy keeps images to our own origin, so no redirect to the bucket."""
    return FileResponse(default_storage.open(name, "rb"), content_type=content_type)
