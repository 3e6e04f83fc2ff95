"""A zip of an image folder: `<class>/<image>` at any one depth, PNG or JPEG.

Every image becomes uint8 channels x height x width at one size and channel count,
chosen by the user or taken from the images (the most common size; 1 channel when all
are grayscale, else 3). Two passes over the archive: headers first (sizes, modes, bad
files), then decoding, straight into the preallocated output array.
"""

import io
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from apps.datasets.ingest.errors import IngestError
from apps.datasets.ingest.limits import DEFAULT_LIMITS, IngestLimits
from apps.datasets.ingest.safezip import DecompressionBudget, open_checked
from apps.datasets.ingest.source import IMAGE, SourceData

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "F"}
MAX_SIDE = 1024


@dataclass(frozen=True)
class ImageOptions:
    height: int | None = None
    width: int | None = None
    channels: int | None = None  # 1 or 3


AUTOMATIC = ImageOptions()


def _is_ignored(name: str) -> bool:
    """macOS archive litter, not data."""
    parts = PurePosixPath(name).parts
    return parts[0] == "__MACOSX" or parts[-1].startswith(".")


def _image_members(infos) -> list:
    members = [info for info in infos if not _is_ignored(info.filename)]
    not_images = [i.filename for i in members if PurePosixPath(i.filename).suffix.lower() not in IMAGE_SUFFIXES]
    if not_images:
        shown = ", ".join(f"'{name}'" for name in not_images[:5])
        more = f" and {len(not_images) - 5} more" if len(not_images) > 5 else ""
        raise IngestError(f"the zip holds files that are not PNG or JPEG images: {shown}{more}")
    if not members:
        raise IngestError("the zip holds no images; expected <class>/<image>.png folders")
    depths = {len(PurePosixPath(i.filename).parts) for i in members}
    if min(depths) < 2:
        flat = next(i.filename for i in members if len(PurePosixPath(i.filename).parts) < 2)
        raise IngestError(f"'{flat}' is not inside a class folder; expected <class>/<image>")
    if len(depths) > 1:
        raise IngestError("images sit at different folder depths; put every image at <class>/<image> at one depth")
    return sorted(members, key=lambda info: info.filename)


def _open_image(data: bytes, name: str, limits: IngestLimits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > limits.image_max_pixels:
                raise IngestError(f"image '{name}' is {image.width}x{image.height}; too many pixels")
            return image
    except Image.DecompressionBombError:
        raise IngestError(f"image '{name}' has too many pixels (a decompression bomb?); it was refused") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as error:
        raise IngestError(f"corrupt image: '{name}' ({type(error).__name__})") from None


def _choose_geometry(headers: list[tuple[tuple[int, int], str]], options: ImageOptions) -> tuple[int, int, int]:
    (common_w, common_h), _ = Counter(size for size, _ in headers).most_common(1)[0]
    channels = options.channels or (1 if all(mode in GRAYSCALE_MODES for _, mode in headers) else 3)
    height, width = options.height or common_h, options.width or common_w
    if channels not in (1, 3):
        raise IngestError("channels must be 1 (grayscale) or 3 (RGB)")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise IngestError(f"image size must be between 1 and {MAX_SIDE} pixels a side")
    return channels, height, width


def _decode(image: Image.Image, name: str, channels: int, height: int, width: int) -> np.ndarray:
    try:
        converted = image.convert("L" if channels == 1 else "RGB")
        if converted.size != (width, height):
            converted = converted.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(converted, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as error:
        raise IngestError(f"corrupt image: '{name}' ({type(error).__name__})") from None
    return array[None, :, :] if channels == 1 else array.transpose(2, 0, 1)


def read_image_zip(
    path: Path,
    *,
    options: ImageOptions = AUTOMATIC,
    limits: IngestLimits = DEFAULT_LIMITS,
    progress: Callable[[float, str], None] = lambda fraction, message: None,
) -> SourceData:
    archive, infos = open_checked(path, limits)
    with archive:
        members = _image_members(infos)
        headers, budget = [], DecompressionBudget(limits)
        for n, info in enumerate(members):
            image = _open_image(budget.read_member(archive, info), info.filename, limits)
            headers.append((image.size, image.mode))
            progress(0.3 * (n + 1) / len(members), f"checked {n + 1:,} of {len(members):,} images")
        channels, height, width = _choose_geometry(headers, options)
        if len(members) * channels * height * width > limits.max_features_total:
            raise IngestError(f"{len(members):,} images of {channels}x{height}x{width} exceed the size limit")
        output = np.empty((len(members), channels, height, width), dtype=np.uint8)
        decode_budget = DecompressionBudget(limits)
        for n, info in enumerate(members):
            data = decode_budget.read_member(archive, info)
            output[n] = _decode(_open_image(data, info.filename, limits), info.filename, channels, height, width)
            progress(0.3 + 0.7 * (n + 1) / len(members), f"decoded {n + 1:,} of {len(members):,} images")
    labels = np.array([PurePosixPath(info.filename).parts[-2] for info in members])
    return SourceData(kind=IMAGE, chunks=[output], labels=labels, sample_shape=(channels, height, width))
