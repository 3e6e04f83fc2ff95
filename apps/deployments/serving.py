"""Inputs to predictions for a served model: checks, image decoding, top-k. Plain numpy/torch; no Django.

Inputs are raw values, as the dataset stored them (table features as in the CSV, image
pixels 0-255); the version's own preprocessing turns them into what the module saw in
training, so a client never needs to know the training statistics.
"""

import io
import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from apps.datasets.loading import preprocess

MAX_IMAGE_PIXELS = 16_000_000


class InputError(ValueError):
    """The request's inputs cannot be served; `field` names the input at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value[:20]!r}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return type(value).__name__


def _first_problem(value, shape: Sequence[int], path: str) -> str | None:
    """Where a nested list stops matching `shape` of numbers, in words (None when it matches)."""
    if not shape:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{path}: expected a number, got {_describe(value)}"
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer too large for a float
            finite = False
        if not finite:
            shown = str(value) if len(str(value)) <= 20 else str(value)[:20] + "…"
            return f"{path}: expected a finite number, got {shown}"
        return None
    if not isinstance(value, list):
        return f"{path}: expected a list of {shape[0]} values, got {_describe(value)}"
    if len(value) != shape[0]:
        return f"{path}: expected {shape[0]} values, got {len(value)}"
    for index, item in enumerate(value):
        problem = _first_problem(item, shape[1:], f"{path}[{index}]")
        if problem:
            return problem
    return None


def _batch_problem(raw: list, sample_shape: tuple[int, ...]) -> str:
    """The first problem of a batch that numpy refused or that has the wrong shape."""
    for index, sample in enumerate(raw):
        problem = _first_problem(sample, sample_shape, f"inputs[{index}]")
        if problem:
            return f"{problem} (each sample has shape {list(sample_shape)})"
    return f"each sample must have shape {list(sample_shape)}"


def inputs_array(raw, input_shape: Sequence[int], *, max_batch: int) -> np.ndarray:
    """A JSON batch of samples as a float32 array of shape (batch, *input_shape), or `InputError`.

    A one-channel image may also be sent as height x width rows (the channel is implied).
    """
    sample_shape = tuple(int(n) for n in input_shape)
    if raw is None:
        raise InputError("inputs", "this field is required: a list of samples")
    if not isinstance(raw, list):
        raise InputError("inputs", f"expected a list of samples, got {_describe(raw)}")
    if not raw:
        raise InputError("inputs", "send at least one sample")
    if len(raw) > max_batch:
        raise InputError("inputs", f"a batch holds at most {max_batch} samples; got {len(raw)}")
    try:
        array = np.array(raw)
    except (ValueError, TypeError, OverflowError):  # ragged lists, integers too large
        raise InputError("inputs", _batch_problem(raw, sample_shape)) from None
    if array.dtype.kind not in "iuf":  # strings, booleans, nulls, objects
        raise InputError("inputs", _batch_problem(raw, sample_shape))
    if len(sample_shape) == 3 and sample_shape[0] == 1 and array.shape[1:] == sample_shape[1:]:
        array = array[:, None]
    if array.shape[1:] != sample_shape:
        if array.ndim == len(sample_shape) and array.shape == sample_shape[: array.ndim]:
            raise InputError(
                "inputs", f"expected a batch (a list of samples of shape {list(sample_shape)}); wrap one sample in [ ]"
            )
        raise InputError(
            "inputs",
            f"each sample must have shape {list(sample_shape)}; got {list(array.shape[1:])} "
            f"(a batch of shape {list(array.shape)})",
        )
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise InputError("inputs", "every value must be a finite number")
    return array


def _open_image(data: bytes, name: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(name, "the image has too many pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InputError(name, "not a readable PNG or JPEG image") from None


def image_array(data: bytes, input_shape: Sequence[int], *, name: str = "image") -> np.ndarray:
    """An uploaded PNG/JPEG as one sample (channels, height, width) of 0-255 values, sized for the model."""
    if len(input_shape) != 3:
        raise InputError(name, f"this model takes feature vectors of shape {list(input_shape)}, not images")
    channels, height, width = (int(n) for n in input_shape)
    image = _open_image(data, name)
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise InputError(name, f"the image is {image.width}x{image.height}; too many pixels")
    try:
        converted = image.convert("L" if channels == 1 else "RGB")
        if converted.size != (width, height):
            converted = converted.resize((width, height), Image.Resampling.BILINEAR)
    except (OSError, SyntaxError, ValueError):
        raise InputError(name, "not a readable PNG or JPEG image") from None
    array = np.asarray(converted, dtype=np.float32)
    return array[None, :, :] if channels == 1 else array.transpose(2, 0, 1)


def probabilities(module: nn.Module, inputs: np.ndarray, preprocessing: dict) -> torch.Tensor:
    """Class probabilities of a batch of raw inputs (softmax over the module's logits)."""
    with torch.no_grad():
        logits = module(preprocess(torch.from_numpy(inputs), preprocessing))
        return torch.softmax(logits.float(), dim=1)


def top_k(probs: torch.Tensor, k: int, class_names: Sequence[str]) -> list[dict]:
    """Per sample, the k likeliest classes: [{"top_k": [{"index", "name", "probability"}, ...]}, ...]."""
    values, indexes = torch.topk(probs, k=k, dim=1)
    return [
        {
            "top_k": [
                {
                    "index": int(i),
                    "name": class_names[int(i)] if int(i) < len(class_names) else str(int(i)),
                    "probability": float(p),
                }
                for p, i in zip(row_values, row_indexes, strict=True)
            ]
        }
        for row_values, row_indexes in zip(values.tolist(), indexes.tolist(), strict=True)
    ]
