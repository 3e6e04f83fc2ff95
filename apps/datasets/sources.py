"""From a version's source format and options to the plain ingest readers.

`validate_options` runs in the request (a bad option is a 400 at once); `read_source`
runs in the worker.
"""

from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from apps.core.params import invalid
from apps.datasets.ingest.bundled import BUNDLED_SETS, load_bundled, synthetic_params
from apps.datasets.ingest.csv_source import read_csv
from apps.datasets.ingest.errors import IngestError
from apps.datasets.ingest.image_source import ImageOptions, read_image_zip
from apps.datasets.ingest.limits import IngestLimits
from apps.datasets.ingest.npz_source import read_npz
from apps.datasets.ingest.source import IMAGE, TABULAR, SourceData
from apps.datasets.models import SourceFormat, Task

TASK_KIND = {Task.IMAGE_CLASSIFICATION: IMAGE, Task.TABULAR_CLASSIFICATION: TABULAR}
ALLOWED_OPTIONS = {
    SourceFormat.CSV: {"label_column", "seed"},
    SourceFormat.NPZ: {"seed"},
    SourceFormat.IMAGE_ZIP: {"height", "width", "channels", "seed"},
    SourceFormat.BUNDLED: {"name", "params", "seed"},
}


def _int_option(options: dict, name: str, low: int, high: int) -> int | None:
    value = options.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid(name, f"must be an integer; got {value!r}") from None
    if not low <= number <= high:
        raise invalid(name, f"must be from {low} to {high}")
    return number


def validate_options(source_format: str, task: str, options: dict) -> dict:
    """The options a source takes, checked against the dataset's task; unknown keys are refused."""
    if source_format not in ALLOWED_OPTIONS:
        raise invalid("format", f"unknown format '{source_format}'; use one of {', '.join(ALLOWED_OPTIONS)}")
    unknown = {k for k, v in options.items() if v not in (None, "")} - ALLOWED_OPTIONS[source_format]
    if unknown:
        raise invalid(sorted(unknown)[0], f"not an option of {source_format} sources")
    if source_format == SourceFormat.CSV and task != Task.TABULAR_CLASSIFICATION:
        raise invalid("format", "CSV files make tabular datasets; this dataset is for images")
    if source_format == SourceFormat.IMAGE_ZIP and task != Task.IMAGE_CLASSIFICATION:
        raise invalid("format", "image zips make image datasets; this dataset is tabular")
    clean = {"seed": _int_option(options, "seed", 0, 2**31 - 1) or 0}
    if source_format == SourceFormat.CSV and options.get("label_column"):
        clean["label_column"] = str(options["label_column"]).strip()
    if source_format == SourceFormat.IMAGE_ZIP:
        for name, high in (("height", 1024), ("width", 1024), ("channels", 3)):
            clean[name] = _int_option(options, name, 1, high)
        if clean["channels"] not in (None, 1, 3):
            raise invalid("channels", "must be 1 (grayscale) or 3 (RGB)")
    if source_format == SourceFormat.BUNDLED:
        clean.update(_bundled_options(options, task))
    return clean


def _bundled_options(options: dict, task: str) -> dict:
    name = options.get("name")
    if name not in BUNDLED_SETS:
        raise invalid("bundled", f"unknown bundled dataset {name!r}; choose from {', '.join(BUNDLED_SETS)}")
    if BUNDLED_SETS[name].kind != TASK_KIND[task]:
        raise invalid("bundled", f"'{name}' is a {BUNDLED_SETS[name].kind} dataset; this dataset is for {task}")
    params = options.get("params") or {}
    if not isinstance(params, dict):
        raise invalid("params", "must be an object")
    if name == "synthetic":
        try:
            synthetic_params(params, ingest_limits())
        except IngestError as error:
            raise invalid("params", error.message) from None
    return {"name": name, "params": params}


def ingest_limits() -> IngestLimits:
    return IngestLimits(**settings.LEPTON_INGEST_LIMITS)


def read_source(version, path: Path | None, *, progress: Callable[[float, str], None]) -> SourceData:
    options, limits = version.source_options, ingest_limits()
    kind = TASK_KIND[version.dataset.task]
    if version.source_format == SourceFormat.CSV:
        return read_csv(path, label_column=options.get("label_column"), limits=limits, progress=progress)
    if version.source_format == SourceFormat.NPZ:
        return read_npz(path, task_kind=kind, limits=limits, progress=progress)
    if version.source_format == SourceFormat.IMAGE_ZIP:
        geometry = ImageOptions(options.get("height"), options.get("width"), options.get("channels"))
        return read_image_zip(path, options=geometry, limits=limits, progress=progress)
    return load_bundled(options["name"], params=options.get("params"), limits=limits)
