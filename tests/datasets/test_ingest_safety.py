"""Hostile and broken inputs fail with a clear message (plain ingest code, no database)."""

import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from apps.datasets.ingest.csv_source import read_csv
from apps.datasets.ingest.errors import IngestError
from apps.datasets.ingest.image_source import read_image_zip
from apps.datasets.ingest.limits import IngestLimits
from apps.datasets.ingest.npz_source import read_npz
from apps.datasets.ingest.pipeline import build_version_file
from apps.datasets.ingest.safezip import DecompressionBudget, is_contained
from tests.datasets.builders import (
    class_folders,
    image_zip,
    iris_like_rows,
    png_bytes,
    symlink_zip,
    write_csv,
    zeros_zip,
)


def _fails(reader, *args, **kwargs) -> str:
    with pytest.raises(IngestError) as failure:
        reader(*args, **kwargs)
    return failure.value.message


# --- zip archives -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil/x.png", "contains '..'"),
        ("pets/../../x.png", "contains '..'"),
        ("pets\\cat\\x.png", "contains a backslash"),
        ("/etc/cron.d/x.png", "is an absolute path"),
        ("C:/windows/x.png", "is an absolute path"),
    ],
)
def test_zip_entries_that_escape_the_archive_are_refused(tmp_path, name, problem):
    files = class_folders()
    files[name] = png_bytes()

    message = _fails(read_image_zip, image_zip(tmp_path / "evil.zip", files))

    assert message == f"zip entry '{name}' {problem}; it was refused"


def test_zip_symlinks_are_refused(tmp_path):
    message = _fails(read_image_zip, symlink_zip(tmp_path / "link.zip", "pets/cat/x.png", "/etc/passwd"))

    assert message == "zip entry 'pets/cat/x.png' is a symbolic link; it was refused"


def test_containment_is_a_path_check_not_a_string_prefix(tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    (tmp_path / "archive-evil").mkdir()

    assert is_contained(root, "cats/a.png")
    assert is_contained(root, "cats/../dogs/a.png")
    assert not is_contained(root, "../archive-evil/a.png")  # same prefix, sibling folder
    assert str((root / "../archive-evil/a.png").resolve()).startswith(str(root))  # what a prefix check would allow
    assert not is_contained(root, "/etc/passwd")


def test_containment_follows_symlinked_folders(tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    (root / "sneaky").symlink_to(tmp_path)

    assert not is_contained(root, "sneaky/secret.png")


def test_too_many_entries_are_refused(tmp_path):
    files = class_folders(per_class=6)

    message = _fails(read_image_zip, image_zip(tmp_path / "many.zip", files), limits=IngestLimits(zip_max_entries=10))

    assert message == "the zip has 12 entries; at most 10 are allowed"


def test_total_declared_size_over_the_limit_is_refused(tmp_path):
    message = _fails(
        read_image_zip, image_zip(tmp_path / "big.zip", class_folders()), limits=IngestLimits(zip_max_total_bytes=100)
    )

    assert message.startswith("the zip would unpack to")
    assert "the limit is 100" in message


@pytest.fixture(scope="session")
def gib_of_zeros(tmp_path_factory) -> Path:
    return zeros_zip(tmp_path_factory.mktemp("bomb") / "zeros.zip", gib=1.0)


def test_a_gib_of_zeros_is_refused_before_anything_is_inflated(gib_of_zeros):
    tracemalloc.start()
    message = _fails(read_image_zip, gib_of_zeros)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert "zeros/a.png" in message
    assert "1,073,741,824 bytes" in message
    assert peak < 32 * 1024**2


def test_a_high_compression_ratio_is_refused(gib_of_zeros):
    limits = IngestLimits(zip_max_entry_bytes=2 * 1024**3, zip_max_total_bytes=8 * 1024**3)

    message = _fails(read_image_zip, gib_of_zeros, limits=limits)

    assert "compression ratio" in message


def test_a_lying_declared_size_cannot_inflate_more_than_it_claims(tmp_path):
    """The header says 1,000 bytes; the data is 1 GiB of zeros. Only the bytes read are counted."""
    liar = zeros_zip(tmp_path / "liar.zip", gib=1.0, declared_size=1000)
    with zipfile.ZipFile(liar) as archive:
        assert archive.infolist()[0].file_size == 1000

    tracemalloc.start()
    message = _fails(read_image_zip, liar)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert "zeros/a.png" in message
    assert peak < 32 * 1024**2


def test_bytes_actually_decompressed_are_counted_across_entries(tmp_path):
    """Every member read goes through one budget; the sum of real bytes is capped, not the declared sum."""
    archive_path = image_zip(tmp_path / "x.zip", class_folders(per_class=4, size=(64, 64)))
    limits = IngestLimits(zip_max_total_bytes=3 * len(png_bytes((64, 64))))
    budget = DecompressionBudget(limits)

    def read_all():
        with zipfile.ZipFile(archive_path) as archive:
            for info in archive.infolist():
                budget.read_member(archive, info)

    with pytest.raises(IngestError) as failure:
        read_all()

    assert "decompresses to more than" in failure.value.message
    assert budget.total <= limits.zip_max_total_bytes


# --- images ---------------------------------------------------------------------------------


def test_files_that_are_not_images_are_named(tmp_path):
    files = class_folders()
    files["pets/cat/notes.txt"] = b"hello"
    files["pets/dog/model.pkl"] = b"\x80\x04"

    message = _fails(read_image_zip, image_zip(tmp_path / "x.zip", files))

    assert message == "the zip holds files that are not PNG or JPEG images: 'pets/cat/notes.txt', 'pets/dog/model.pkl'"


def test_a_corrupt_image_is_named_by_path(tmp_path):
    files = class_folders()
    files["pets/dog/broken.png"] = png_bytes()[:40]

    message = _fails(read_image_zip, image_zip(tmp_path / "x.zip", files))

    assert message.startswith("corrupt image: 'pets/dog/broken.png'")


def test_a_truncated_image_is_caught_when_decoded(tmp_path):
    files = class_folders()
    data = png_bytes((64, 64), "L", 7)
    files["pets/dog/cut.png"] = data[: len(data) - 30]

    message = _fails(read_image_zip, image_zip(tmp_path / "x.zip", files))

    assert "'pets/dog/cut.png'" in message


def test_images_outside_class_folders_are_refused(tmp_path):
    message = _fails(read_image_zip, image_zip(tmp_path / "flat.zip", {"a.png": png_bytes(), "b.png": png_bytes()}))

    assert message == "'a.png' is not inside a class folder; expected <class>/<image>"


def test_images_at_mixed_depths_are_refused(tmp_path):
    files = class_folders()
    files["pets/extra/deeper/x.png"] = png_bytes()

    assert "different folder depths" in _fails(read_image_zip, image_zip(tmp_path / "x.zip", files))


def test_macos_litter_is_ignored(tmp_path):
    files = class_folders()
    files["__MACOSX/pets/._cat"] = b"junk"
    files["pets/cat/.DS_Store"] = b"junk"

    source = read_image_zip(image_zip(tmp_path / "x.zip", files))

    assert source.sample_count == 8


def test_not_a_zip_at_all(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"this is not a zip")

    assert _fails(read_image_zip, path).startswith("not a valid zip file")


# --- CSV ---------------------------------------------------------------------------------------


def test_a_non_numeric_cell_names_its_row_and_column(tmp_path):
    rows = iris_like_rows(5)
    rows[6][1] = "n/a?"
    path = write_csv(tmp_path / "x.csv", ["a", "b", "c", "y"], rows)

    assert _fails(read_csv, path) == "row 7, column 'b': 'n/a?' is not a number"


def test_a_non_numeric_cell_is_found_in_a_later_chunk(tmp_path, monkeypatch):
    from apps.datasets.ingest import csv_source

    monkeypatch.setattr(csv_source, "CHUNK_ROWS", 4)
    rows = iris_like_rows(5)
    rows[12][2] = "abc"
    path = write_csv(tmp_path / "x.csv", ["a", "b", "c", "y"], rows)

    assert _fails(read_csv, path) == "row 13, column 'c': 'abc' is not a number"


@pytest.mark.parametrize(("cell", "kind"), [("", "empty or NaN"), ("NaN", "empty or NaN"), ("inf", "infinite")])
def test_empty_nan_and_infinite_cells_are_reported(tmp_path, cell, kind):
    rows = iris_like_rows(5)
    rows[3][0] = cell
    path = write_csv(tmp_path / "x.csv", ["a", "b", "c", "y"], rows)

    assert _fails(read_csv, path) == f"row 4, column 'a': the cell is {kind}"


def test_an_empty_label_is_reported(tmp_path):
    rows = iris_like_rows(5)
    rows[2][3] = ""
    path = write_csv(tmp_path / "x.csv", ["a", "b", "c", "y"], rows)

    assert _fails(read_csv, path) == "row 3, column 'y': the label is empty"


def test_a_missing_label_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["a", "b", "c", "y"], iris_like_rows(5))

    message = _fails(read_csv, path, label_column="species")

    assert message == ("label column 'species' is not in the header; columns: a, b, c, y")


def test_a_row_with_too_many_fields_is_reported(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,y\n1,2,x\n3,4,y,5\n")

    assert _fails(read_csv, path) == "the CSV is malformed: C error: Expected 3 fields in line 3, saw 4"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the CSV file is empty: it needs a header row and data rows"),
        ("a,b,y\n", "the CSV has a header but no data rows"),
        ("a,a,y\n1,2,x\n", "the header repeats column names: a"),
        ("y\nx\n", "the CSV has no feature columns besides the label"),
    ],
)
def test_malformed_csv_files_are_explained(tmp_path, text, message):
    path = tmp_path / "x.csv"
    path.write_text(text)

    assert _fails(read_csv, path) == message


def test_a_single_class_cannot_be_classified(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["a", "y"], [[i, "same"] for i in range(10)])

    with pytest.raises(IngestError, match="found 1 class"):
        build_version_file(read_csv(path), out_path=tmp_path / "o", preview_path=tmp_path / "p", seed=0)


def test_fractional_labels_are_refused(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["a", "y"], [[i, i / 3] for i in range(10)])

    with pytest.raises(IngestError, match="fractional"):
        build_version_file(read_csv(path), out_path=tmp_path / "o", preview_path=tmp_path / "p", seed=0)


# --- NPZ ---------------------------------------------------------------------------------------


def test_object_arrays_in_npz_are_refused(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, X=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))

    assert _fails(read_npz, path, task_kind="tabular") == "array 'X' holds Python objects; object arrays are refused"


def test_npz_needs_x_and_y(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, features=np.zeros((4, 2)), y=np.arange(4))

    assert _fails(read_npz, path, task_kind="tabular") == "the NPZ needs arrays 'X' and 'y'; it has: features, y"


@pytest.mark.parametrize(
    ("x", "y", "fragment"),
    [
        (np.zeros((4, 2)), np.arange(3), "one label per sample"),
        (np.zeros((4, 2, 2)), np.arange(4), "must be 2-D"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), np.arange(2), "X[0, 1] is NaN or infinite"),
    ],
)
def test_npz_shape_and_value_problems_are_explained(tmp_path, x, y, fragment):
    path = tmp_path / "x.npz"
    np.savez(path, X=x, y=y)

    assert fragment in _fails(read_npz, path, task_kind="tabular")


def test_an_unterminated_quote_is_explained(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('a,b,y\n1,2,x\n3,"4,y\n5,6,z\n')

    assert _fails(read_csv, path).startswith("the CSV is malformed")


def test_a_csv_that_is_not_utf8_is_explained(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b,y\n" + b"1,2,x\n" * 5 + b"1,\xff\xfe,x\n")

    message = _fails(read_csv, path)

    assert "not UTF-8" in message or "is not a number" in message


def test_a_header_longer_than_the_csv_field_limit_is_explained(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('"' + "a" * 200_000 + '",y\n1,x\n')

    assert _fails(read_csv, path).startswith("the CSV header cannot be read")


def test_a_csv_over_the_value_limit_is_refused(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["a", "b", "c", "y"], iris_like_rows(20))

    assert "over the limit" in _fails(read_csv, path, limits=IngestLimits(max_features_total=100))


def test_an_image_with_too_many_pixels_is_refused_by_name(tmp_path):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (200, 200)).save(buffer, format="PNG")
    files = class_folders()
    files["pets/cat/huge.png"] = buffer.getvalue()
    archive = image_zip(tmp_path / "x.zip", files)

    message = _fails(read_image_zip, archive, limits=IngestLimits(image_max_pixels=10_000))

    assert "pets/cat/huge.png" in message
