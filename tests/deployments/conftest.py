"""Acme's deployable models: an iris MLP (tabular) and a digits CNN (images), and a clean module cache."""

import numpy as np
import pytest
import torch

from apps.datasets.loading import preprocess
from apps.deployments.cache import MODELS
from apps.deployments.models import Deployment
from apps.registry.loading import version_module
from tests.factories import dataset_with_version, model_with_version


@pytest.fixture(autouse=True)
def _empty_model_cache():
    MODELS.clear()
    yield
    MODELS.clear()


@pytest.fixture
def iris(world):
    return dataset_with_version(world.acme, bundled="iris", name="iris", creator=world.bob)[1]


@pytest.fixture
def iris_model(world, iris):
    """(model, version 1) of Acme's iris MLP."""
    model, version, _ = model_with_version(world.acme, iris, name="iris-mlp", creator=world.bob)
    return model, version


@pytest.fixture
def iris_deployment(world, iris_model):
    model, version = iris_model
    return Deployment.objects.create(team=world.acme, name="iris", model=model, version=version, created_by=world.bob)


@pytest.fixture
def digits(world):
    return dataset_with_version(world.acme, bundled="digits", name="digits", creator=world.bob)[1]


@pytest.fixture
def digits_deployment(world, digits):
    model, version, _ = model_with_version(
        world.acme, digits, spec={"family": "cnn_small"}, name="digits-cnn", creator=world.bob, steps=20
    )
    return Deployment.objects.create(team=world.acme, name="digits", model=model, version=version, created_by=world.bob)


def raw_test_samples(dataset_version, count: int = 8) -> np.ndarray:
    """The first raw (not preprocessed) samples of a dataset version's test split."""
    from apps.core.storage import local_path
    from apps.datasets.ingest.split import TEST
    from apps.datasets.ingest.tensorfile import read_tensor_file

    arrays, _ = read_tensor_file(local_path(dataset_version.artifact))
    rows = np.flatnonzero(np.asarray(arrays["split"]) == TEST)[:count]
    return np.asarray(arrays["features"][rows], dtype=np.float32)


def own_probabilities(version, raw: np.ndarray) -> torch.Tensor:
    """What the stored version itself computes for raw inputs, rebuilt here without the cache."""
    module = version_module(version)
    with torch.no_grad():
        return torch.softmax(module(preprocess(torch.from_numpy(raw), version.preprocessing)), dim=1)
