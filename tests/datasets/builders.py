"""Build source files for ingest tests: CSVs, NPZs, image zips (well-formed and hostile)."""

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    lines = [",".join(header)] + [",".join(str(cell) for cell in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def iris_like_rows(n_per_class: int = 10, classes=("setosa", "versicolor", "virginica")) -> list[list]:
    rng = np.random.default_rng(0)
    rows = []
    for k, name in enumerate(classes):
        for _ in range(n_per_class):
            rows.append([*(rng.normal(k, 0.3, 3).round(3)), name])
    return rows


def png_bytes(size=(8, 8), mode="L", value=128) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, value if mode == "L" else (value, 0, 255 - value)).save(buffer, format="PNG")
    return buffer.getvalue()


def image_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def class_folders(classes=("cat", "dog"), per_class=4, prefix="pets/", size=(8, 8), mode="L") -> dict[str, bytes]:
    return {
        f"{prefix}{cls}/img{i}.png": png_bytes(size, mode, value=40 * k + i)
        for k, cls in enumerate(classes)
        for i in range(per_class)
    }


def symlink_zip(path: Path, name: str, target: str) -> Path:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o120777 << 16  # S_IFLNK
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(info, target)
    return path


def zeros_zip(path: Path, *, gib: float = 1.0, declared_size: int | None = None) -> Path:
    """One entry of `gib` GiB of zeros (about 1 MB compressed); optionally lie about its size."""
    block = b"\0" * (16 * 1024 * 1024)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("zeros/a.png", "w", force_zip64=False) as entry,
    ):
        for _ in range(int(gib * 64)):
            entry.write(block)
    if declared_size is not None:
        _patch_declared_size(path, declared_size)
    return path


def _patch_declared_size(path: Path, size: int) -> None:
    """Rewrite the uncompressed size in the local header and the central directory."""
    data = bytearray(path.read_bytes())
    local = data.find(b"PK\x03\x04")
    data[local + 22 : local + 26] = size.to_bytes(4, "little")
    central = data.find(b"PK\x01\x02")
    data[central + 24 : central + 28] = size.to_bytes(4, "little")
    path.write_bytes(bytes(data))
