"""Every source format ingests and loads into tensors with the right shapes and class counts.

Plain numpy/torch tests: no database.
"""

import json

import numpy as np
import pytest
import safetensors
import torch

from apps.datasets.ingest.bundled import BUNDLED_SETS, load_bundled
from apps.datasets.ingest.csv_source import read_csv
from apps.datasets.ingest.image_source import ImageOptions, read_image_zip
from apps.datasets.ingest.labels import encode_labels
from apps.datasets.ingest.npz_source import read_npz
from apps.datasets.ingest.pipeline import build_version_file
from apps.datasets.ingest.split import stratified_split
from apps.datasets.loading import load_splits
from tests.datasets.builders import class_folders, image_zip, iris_like_rows, png_bytes, write_csv

EXPECTED_BUNDLED = {
    # name: (samples, sample shape, classes)
    "digits": (1797, (1, 8, 8), 10),
    "wine": (178, (13,), 3),
    "breast_cancer": (569, (30,), 2),
    "iris": (150, (4,), 3),
}


def _build(source, tmp_path, seed=0):
    out, preview = tmp_path / "v.safetensors", tmp_path / "preview.png"
    result = build_version_file(source, out_path=out, preview_path=preview, seed=seed)
    return result, out


def _assert_loads(out, result, shape, classes):
    train, val, test = load_splits(out)
    assert len(train) + len(val) + len(test) == result.sample_count
    x, y = train.tensors()
    assert tuple(x.shape[1:]) == tuple(shape)
    assert x.dtype == torch.float32
    assert y.dtype == torch.int64
    counts = torch.bincount(torch.cat([s.tensors()[1] for s in (train, val, test)]), minlength=classes)
    assert counts.tolist() == result.class_counts
    assert min(len(train), len(val), len(test)) > 0


@pytest.mark.parametrize("name", list(EXPECTED_BUNDLED))
def test_every_bundled_set_ingests_and_loads(tmp_path, name):
    samples, shape, classes = EXPECTED_BUNDLED[name]

    result, out = _build(load_bundled(name), tmp_path)

    assert result.sample_count == samples
    assert tuple(result.sample_shape) == shape
    assert len(result.class_names) == classes
    assert sum(result.class_counts) == samples
    _assert_loads(out, result, shape, classes)


def test_synthetic_set_of_a_requested_size(tmp_path):
    source = load_bundled("synthetic", params={"samples": 5000, "features": 12, "classes": 4, "seed": 7})

    result, out = _build(source, tmp_path)

    assert (result.sample_count, result.sample_shape, len(result.class_names)) == (5000, [12], 4)
    _assert_loads(out, result, (12,), 4)
    again = load_bundled("synthetic", params={"samples": 5000, "features": 12, "classes": 4, "seed": 7})
    assert np.array_equal(again.chunks[0], source.chunks[0])


def test_images_are_scaled_to_unit_range_and_tables_standardized_on_train(tmp_path):
    digits, out = _build(load_bundled("digits"), tmp_path)
    x, _ = load_splits(out)[0].tensors()
    assert x.min() >= 0.0
    assert x.max() <= 1.0
    assert digits.preprocessing["kind"] == "scale"

    _, out = _build(load_bundled("wine"), tmp_path)
    x, _ = load_splits(out)[0].tensors()
    assert torch.allclose(x.mean(0), torch.zeros(13), atol=1e-4)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(13), atol=1e-3)


def test_csv_with_string_labels_keeps_the_class_names(tmp_path):
    path = write_csv(tmp_path / "flowers.csv", ["a", "b", "c", "species"], iris_like_rows(10))

    source = read_csv(path)
    result, out = _build(source, tmp_path)

    assert result.class_names == ["setosa", "versicolor", "virginica"]
    assert result.class_counts == [10, 10, 10]
    assert result.feature_names == ["a", "b", "c"]
    _assert_loads(out, result, (3,), 3)


def test_csv_label_column_can_be_named(tmp_path):
    rows = [[row[3], *row[:3]] for row in iris_like_rows(5)]
    path = write_csv(tmp_path / "first.csv", ["kind", "a", "b", "c"], rows)

    source = read_csv(path, label_column="kind")

    assert source.feature_names == ["a", "b", "c"]
    assert source.class_names == ["setosa", "versicolor", "virginica"]
    assert source.labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5


def test_csv_is_parsed_in_chunks(tmp_path, monkeypatch):
    from apps.datasets.ingest import csv_source

    monkeypatch.setattr(csv_source, "CHUNK_ROWS", 7)
    path = write_csv(tmp_path / "many.csv", ["a", "b", "c", "y"], iris_like_rows(20))

    source = read_csv(path)

    assert len(source.chunks) == 9
    assert source.sample_count == 60


def test_npz_tabular_and_images(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "tab.npz", X=rng.normal(size=(60, 5)), y=np.repeat([0, 1, 2], 20))
    np.savez(
        tmp_path / "img.npz", X=rng.integers(0, 256, size=(30, 12, 10), dtype=np.uint8), y=np.repeat(["a", "b"], 15)
    )

    tab, out = _build(read_npz(tmp_path / "tab.npz", task_kind="tabular"), tmp_path)
    _assert_loads(out, tab, (5,), 3)
    img, out = _build(read_npz(tmp_path / "img.npz", task_kind="image"), tmp_path)
    assert img.sample_shape == [1, 12, 10]
    assert img.class_names == ["a", "b"]
    _assert_loads(out, img, (1, 12, 10), 2)


def test_image_zip_defaults_come_from_the_images(tmp_path):
    files = class_folders(("cat", "dog", "emu"), per_class=4, prefix="data/pets/", size=(10, 6))

    source = read_image_zip(image_zip(tmp_path / "pets.zip", files))
    result, out = _build(source, tmp_path)

    assert result.sample_shape == [1, 6, 10]  # grayscale, height 6, width 10
    assert result.class_names == ["cat", "dog", "emu"]
    assert result.class_counts == [4, 4, 4]
    assert (tmp_path / "preview.png").stat().st_size > 0
    _assert_loads(out, result, (1, 6, 10), 3)


def test_image_zip_converts_to_the_chosen_size_and_channels(tmp_path):
    files = class_folders(("a", "b"), per_class=3, prefix="", size=(20, 20), mode="RGB")
    files["a/small.jpg"] = png_bytes((5, 9), "L")  # a PNG named .jpg: decoded by content

    source = read_image_zip(image_zip(tmp_path / "x.zip", files), options=ImageOptions(height=8, width=8, channels=3))

    assert source.sample_shape == (3, 8, 8)
    assert source.chunks[0].shape == (7, 3, 8, 8)


def test_the_tensor_file_is_valid_safetensors_with_self_describing_metadata(tmp_path):
    result, out = _build(load_bundled("iris"), tmp_path)

    with safetensors.safe_open(out, framework="np") as handle:
        assert set(handle.keys()) == {"features", "labels", "split"}
        assert handle.get_tensor("features").shape == (150, 4)
        metadata = handle.metadata()
    assert json.loads(metadata["class_names"]) == ["setosa", "versicolor", "virginica"]
    assert json.loads(metadata["preprocessing"]) == result.preprocessing


def test_the_split_is_the_same_every_time_and_stratified(tmp_path):
    labels = np.repeat(np.arange(4), 50)

    first, second = stratified_split(labels, seed=3), stratified_split(labels, seed=3)

    assert np.array_equal(first, second)
    assert not np.array_equal(first, stratified_split(labels, seed=4))
    for cls in range(4):
        assert np.bincount(first[labels == cls], minlength=3).tolist() == [34, 8, 8]  # 15% of 50 = 7.5 rounds to 8


def test_loading_maps_the_file_instead_of_reading_it(tmp_path):
    _, out = _build(load_bundled("synthetic", params={"samples": 2000, "features": 50}), tmp_path)

    train, _, _ = load_splits(out)

    assert isinstance(train.features, np.memmap)
    x, y = train[np.arange(0, len(train), 7)]  # one gather of rows from the mapped file
    assert (x.shape[1], len(y)) == (50, len(range(0, len(train), 7)))


@pytest.mark.parametrize(
    ("raw", "names", "indices"),
    [
        (np.array([3, 1, 2, 1]), ["1", "2", "3"], [2, 0, 1, 0]),
        (np.array(["10", "9", "10"]), ["9", "10"], [1, 0, 1]),
        (np.array([1.0, 0.0, 1.0]), ["0", "1"], [1, 0, 1]),
        (np.array(["b", "a", " b "]), ["a", "b"], [1, 0, 1]),
    ],
)
def test_labels_map_to_indices_in_natural_order(raw, names, indices):
    encoded, found = encode_labels(raw)

    assert found == names
    assert encoded.tolist() == indices


def test_bundled_catalogue_is_what_the_docs_promise():
    assert set(BUNDLED_SETS) == {"digits", "wine", "breast_cancer", "iris", "synthetic"}
