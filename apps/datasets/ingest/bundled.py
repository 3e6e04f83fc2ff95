"""Datasets that need no download: scikit-learn's bundled sets and a seeded synthetic one."""

from dataclasses import dataclass

import numpy as np
from sklearn import datasets as sk

from apps.datasets.ingest.errors import IngestError
from apps.datasets.ingest.limits import DEFAULT_LIMITS, IngestLimits
from apps.datasets.ingest.source import IMAGE, TABULAR, SourceData


@dataclass(frozen=True)
class BundledSet:
    name: str
    kind: str
    description: str


BUNDLED_SETS = {
    "digits": BundledSet("digits", IMAGE, "8x8 grayscale handwritten digits, 10 classes, 1,797 images"),
    "wine": BundledSet("wine", TABULAR, "13 chemical measurements of wines, 3 cultivars, 178 samples"),
    "breast_cancer": BundledSet("breast_cancer", TABULAR, "30 cell-nucleus features, benign/malignant, 569 samples"),
    "iris": BundledSet("iris", TABULAR, "4 flower measurements, 3 species, 150 samples"),
    "synthetic": BundledSet("synthetic", TABULAR, "seeded synthetic classification of any size (scikit-learn)"),
}

LOADERS = {"digits": sk.load_digits, "wine": sk.load_wine, "breast_cancer": sk.load_breast_cancer, "iris": sk.load_iris}
SYNTHETIC_DEFAULTS = {"samples": 1000, "features": 20, "classes": 2, "informative": None, "seed": 0}


def _from_bunch(bunch, kind: str) -> SourceData:
    labels = np.asarray(bunch.target, dtype=np.int64)
    class_names = [str(name) for name in bunch.target_names]
    if kind == IMAGE:
        # digits are 0..16 intensities; scale to the 0..255 of every image dataset
        images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
        return SourceData(IMAGE, [images], labels, tuple(images.shape[1:]), class_names=class_names)
    features = np.asarray(bunch.data, dtype=np.float32)
    names = [str(name) for name in bunch.feature_names]
    return SourceData(TABULAR, [features], labels, (features.shape[1],), feature_names=names, class_names=class_names)


def _int_param(params: dict, name: str, low: int, high: int) -> int:
    value = params.get(name, SYNTHETIC_DEFAULTS[name])
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise IngestError(f"synthetic '{name}' must be an integer from {low} to {high:,}; got {value!r}")
    return value


def synthetic_params(params: dict, limits: IngestLimits = DEFAULT_LIMITS) -> dict:
    """The synthetic set's parameters, checked (cheap: the request checks them before queueing)."""
    unknown = set(params) - set(SYNTHETIC_DEFAULTS)
    if unknown:
        raise IngestError(f"unknown synthetic parameter(s): {', '.join(sorted(unknown))}")
    samples = _int_param(params, "samples", 10, limits.max_samples)
    features = _int_param(params, "features", 2, 10_000)
    classes = _int_param(params, "classes", 2, 100)
    seed = _int_param(params, "seed", 0, 2**31 - 1)
    informative = params.get("informative") or min(features, max(2, classes))
    if samples * features > limits.max_features_total:
        raise IngestError(f"{samples:,} x {features:,} values exceed the limit of {limits.max_features_total:,}")
    if not isinstance(informative, int) or not 2 <= informative <= features or 2**informative < classes:
        raise IngestError("synthetic 'informative' must be 2..features and large enough for the classes")
    return {"samples": samples, "features": features, "classes": classes, "seed": seed, "informative": informative}


def _synthetic(params: dict, limits: IngestLimits) -> SourceData:
    checked = synthetic_params(params, limits)
    samples, features, classes = checked["samples"], checked["features"], checked["classes"]
    seed, informative = checked["seed"], checked["informative"]
    x, y = sk.make_classification(
        n_samples=samples,
        n_features=features,
        n_informative=informative,
        n_redundant=0,
        n_classes=classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    names = [f"f{i}" for i in range(features)]
    return SourceData(
        TABULAR,
        [x.astype(np.float32)],
        y.astype(np.int64),
        (features,),
        feature_names=names,
        class_names=[str(c) for c in range(classes)],
    )


def load_bundled(name: str, *, params: dict | None = None, limits: IngestLimits = DEFAULT_LIMITS) -> SourceData:
    if name not in BUNDLED_SETS:
        raise IngestError(f"unknown bundled dataset '{name}'; choose from {', '.join(BUNDLED_SETS)}")
    if name == "synthetic":
        return _synthetic(params or {}, limits)
    if params:
        raise IngestError(f"bundled dataset '{name}' takes no parameters")
    return _from_bunch(LOADERS[name](), BUNDLED_SETS[name].kind)
