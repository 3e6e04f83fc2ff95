"""Opening zip archives from users without trusting them.

Nothing is ever extracted to disk: members are read into memory one at a time through
a reader that counts the bytes actually decompressed (sizes declared in a zip can lie).
Before any member is read, every name must stay inside the archive root once resolved,
so `..`, absolute paths, drive letters, backslashes and symlinks are refused, and the
entry count, declared sizes and compression ratios are checked against the limits.
"""

import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from apps.datasets.ingest.errors import IngestError
from apps.datasets.ingest.limits import IngestLimits

_VIRTUAL_ROOT = Path("/lepton-zip-root/archive")


def is_contained(root: Path, member_name: str) -> bool:
    """Does `root / member_name`, fully resolved, stay inside `root`?

    A path check, not a string-prefix check: "../archive-evil/x" resolves to a sibling
    folder whose name merely starts with the root's name, and is refused.
    """
    root = root.resolve()
    target = (root / member_name).resolve()
    return target == root or target.is_relative_to(root)


def _name_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/") or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "contains '..'"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if not is_contained(_VIRTUAL_ROOT, name):
        return "points outside the archive"
    return None


def open_checked(path: Path, limits: IngestLimits) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """The archive and its file members, after checking every name and declared size."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise IngestError(f"not a valid zip file ({error})") from None
    infos = archive.infolist()
    if len(infos) > limits.zip_max_entries:
        archive.close()
        raise IngestError(f"the zip has {len(infos)} entries; at most {limits.zip_max_entries} are allowed")
    for info in infos:
        problem = _name_problem(info)
        if problem:
            archive.close()
            raise IngestError(f"zip entry '{info.filename}' {problem}; it was refused")
    _check_declared_sizes(archive, infos, limits)
    return archive, [info for info in infos if not info.is_dir()]


def _check_declared_sizes(archive, infos, limits: IngestLimits) -> None:
    total = sum(info.file_size for info in infos)
    if total > limits.zip_max_total_bytes:
        archive.close()
        raise IngestError(f"the zip would unpack to {total:,} bytes; the limit is {limits.zip_max_total_bytes:,}")
    for info in infos:
        if info.file_size > limits.zip_max_entry_bytes:
            archive.close()
            raise IngestError(
                f"zip entry '{info.filename}' would unpack to {info.file_size:,} bytes; "
                f"the limit per file is {limits.zip_max_entry_bytes:,}"
            )
        if info.file_size > 1024 * 1024 and info.file_size / max(info.compress_size, 1) > limits.zip_max_ratio:
            archive.close()
            raise IngestError(
                f"zip entry '{info.filename}' has a compression ratio of "
                f"{info.file_size / max(info.compress_size, 1):,.0f}:1; the limit is {limits.zip_max_ratio:,.0f}:1"
            )


class DecompressionBudget:
    """Counts bytes actually decompressed across an archive and per member."""

    def __init__(self, limits: IngestLimits):
        self.limits = limits
        self.total = 0

    def read_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
        cap = min(self.limits.zip_max_entry_bytes, self.limits.zip_max_total_bytes - self.total)
        parts, size = [], 0
        try:
            with archive.open(info) as member:
                while chunk := member.read(min(1024 * 1024, cap + 1 - size)):
                    size += len(chunk)
                    if size > cap:
                        raise IngestError(
                            f"zip entry '{info.filename}' decompresses to more than {cap:,} bytes; it was refused"
                        )
                    parts.append(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
            raise IngestError(f"zip entry '{info.filename}' is corrupt ({error})") from None
        self.total += size
        return b"".join(parts)
