"""CSV with a header row: numeric feature columns and one label column (default: the last).

Parsed in chunks by pandas' C parser, so memory holds the output features plus one
chunk whatever the file size. Problems are reported with their place: "row 12, column
'ash': 'n/a' is not a number". Rows count data rows from 1 (the header is line 1).
"""

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from apps.datasets.ingest.errors import IngestError
from apps.datasets.ingest.labels import encode_labels
from apps.datasets.ingest.limits import DEFAULT_LIMITS, IngestLimits
from apps.datasets.ingest.source import TABULAR, SourceData

CHUNK_ROWS = 20_000


def _header(path: Path, limits: IngestLimits) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        try:
            header = next(csv.reader(handle), None)
        except csv.Error as error:
            raise IngestError(f"the CSV header cannot be read ({error})") from None
    if not header or all(not name.strip() for name in header):
        raise IngestError("the CSV file is empty: it needs a header row and data rows")
    names = [name.strip() for name in header]
    if len(names) > limits.max_columns:
        raise IngestError(f"the CSV has {len(names)} columns; at most {limits.max_columns} are allowed")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise IngestError(f"the header repeats column names: {', '.join(duplicates)}")
    if any(not name for name in names):
        raise IngestError(f"the header has an unnamed column (column {names.index('') + 1})")
    return names


def _locate_non_number(path: Path, columns: list[str], features: list[str], first_row: int) -> str:
    """Re-read one chunk as text to name the first cell that is not a number."""
    frame = pd.read_csv(
        path,
        names=columns,
        header=0,
        skiprows=range(1, first_row),
        nrows=CHUNK_ROWS,
        dtype=str,
        keep_default_na=False,
        encoding="utf-8-sig",
        encoding_errors="replace",
    )
    for offset, row in enumerate(frame[features].itertuples(index=False)):
        for name, cell in zip(features, row, strict=True):
            try:
                float(cell)
            except ValueError:
                if cell.strip():
                    return f"row {first_row + offset}, column '{name}': '{cell[:40]}' is not a number"
    return f"a value in rows {first_row}-{first_row + CHUNK_ROWS - 1} is not a number"


def _check_finite(values: np.ndarray, features: list[str], first_row: int) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        rows, cols = np.nonzero(bad)
        kind = "empty or NaN" if np.isnan(values[rows[0], cols[0]]) else "infinite"
        more = f" ({len(rows) - 1} more missing, NaN or infinite cells follow)" if len(rows) > 1 else ""
        raise IngestError(f"row {first_row + rows[0]}, column '{features[cols[0]]}': the cell is {kind}{more}")


def _check_labels(labels: pd.Series, label: str, first_row: int) -> np.ndarray:
    text = labels.astype(str).str.strip()
    missing = labels.isna().to_numpy() | (text == "").to_numpy()
    if missing.any():
        raise IngestError(f"row {first_row + int(np.argmax(missing))}, column '{label}': the label is empty")
    return text.to_numpy()


class LabelCodes:
    """Label text to small integer codes, chunk by chunk: memory holds one code per row, not its text."""

    def __init__(self):
        self.vocabulary: dict[str, int] = {}

    def encode(self, text: np.ndarray) -> np.ndarray:
        uniques, inverse = np.unique(text, return_inverse=True)
        codes = np.array([self.vocabulary.setdefault(str(u), len(self.vocabulary)) for u in uniques], dtype=np.int64)
        return codes[inverse.reshape(-1)]

    def finish(self, codes: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """(class index per row, class names) with the classes in natural order."""
        names = list(self.vocabulary)
        order, sorted_names = encode_labels(np.array(names))
        return order[codes], sorted_names


def _chunks(path: Path, columns: list[str], dtypes: dict):
    """pandas' chunk reader, its errors turned into IngestError naming what is wrong."""
    with path.open("rb") as handle:
        try:
            reader = pd.read_csv(
                handle, names=columns, header=0, dtype=dtypes, chunksize=CHUNK_ROWS, encoding="utf-8-sig"
            )
            while True:
                try:
                    frame = next(reader)
                except StopIteration:
                    return
                yield frame, handle.tell()
        except pd.errors.ParserError as error:
            detail = str(error).replace("Error tokenizing data. ", "").strip()
            raise IngestError(f"the CSV is malformed: {detail}") from None
        except UnicodeDecodeError as error:
            raise IngestError(f"the CSV is not UTF-8 text (byte {error.start} of a block cannot be decoded)") from None


def read_csv(
    path: Path,
    *,
    label_column: str | None = None,
    limits: IngestLimits = DEFAULT_LIMITS,
    progress: Callable[[float, str], None] = lambda fraction, message: None,
) -> SourceData:
    columns = _header(path, limits)
    label = (label_column or "").strip() or columns[-1]
    if label not in columns:
        raise IngestError(f"label column '{label}' is not in the header; columns: {', '.join(columns[:20])}")
    features = [name for name in columns if name != label]
    if not features:
        raise IngestError("the CSV has no feature columns besides the label")
    dtypes = dict.fromkeys(features, np.float32) | {label: str}
    chunks, codes, first_row, size = [], [], 1, max(path.stat().st_size, 1)
    label_codes = LabelCodes()
    frames = _chunks(path, columns, dtypes)
    while True:
        try:
            frame, position = next(frames)
        except StopIteration:
            break
        except ValueError:  # a cell that is not a number; find it by reading the chunk as text
            raise IngestError(_locate_non_number(path, columns, features, first_row)) from None
        if frame.empty:
            continue
        values = frame[features].to_numpy(dtype=np.float32)
        _check_finite(values, features, first_row)
        chunks.append(values)
        codes.append(label_codes.encode(_check_labels(frame[label], label, first_row)))
        first_row += len(frame)
        _check_size(first_row - 1, len(features), limits)
        progress(position / size, f"parsed {first_row - 1:,} rows")
    if not chunks:
        raise IngestError("the CSV has a header but no data rows")
    labels, class_names = label_codes.finish(np.concatenate(codes))
    return SourceData(
        kind=TABULAR,
        chunks=chunks,
        labels=labels,
        sample_shape=(len(features),),
        feature_names=features,
        class_names=class_names,
    )


def _check_size(rows: int, features: int, limits: IngestLimits) -> None:
    if rows > limits.max_samples:
        raise IngestError(f"the CSV has more than {limits.max_samples:,} rows")
    if rows * features > limits.max_features_total:
        raise IngestError(f"the CSV holds more than {limits.max_features_total:,} values; that is over the limit")
