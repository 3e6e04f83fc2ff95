"""Storing a large artifact never holds the team's quota row: placement for the same team goes on meanwhile.

A storage whose writes block until the test lets them go stands in for a slow copy (a large file
to object storage). While a worker's `version_from_weights` or dataset ingest is stuck in that
write, the team submits a job on another connection and it is placed. Were the quota row locked
across the write, that placement would wait for the lock: `lock_timeout` turns the wait into an
error instead of a hung test. PostgreSQL only (SQLite has no row locks).
"""

import threading

import pytest
import torch
from django.core.files.storage import InMemoryStorage
from django.db import connection, connections

from apps.datasets.models import DatasetVersion
from apps.datasets.services import version_ingest
from apps.datasets.sources import validate_options
from apps.jobs.kinds import KINDS, register_kind
from apps.jobs.scheduler import jobs_place_queued
from apps.jobs.services import job_submit
from apps.registry.models import Model
from apps.registry.services import version_from_weights
from tests.factories import dataset_with_version

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


class HeldStorage(InMemoryStorage):
    """An in-memory storage whose writes, once `hold` is armed, wait until the test releases them."""

    hold = threading.Event()  # set: writes block
    entered = threading.Event()  # a write is waiting
    release = threading.Event()

    def _save(self, name, content):
        if self.hold.is_set():
            self.entered.set()
            assert self.release.wait(timeout=120), "the test never released the write"
        return super()._save(name, content)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (CI runs this with DATABASE_URL set)")


@pytest.fixture
def held_storage(settings):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": f"{__name__}.HeldStorage"}}
    for event in (HeldStorage.hold, HeldStorage.entered, HeldStorage.release):
        event.clear()
    yield HeldStorage
    HeldStorage.release.set()


@pytest.fixture
def noop_kind(monkeypatch):
    monkeypatch.setattr("apps.jobs.kinds.KINDS", dict(KINDS))
    register_kind("train", validate=lambda spec, team, actor: spec, run=lambda context: {})


def _in_a_worker(store) -> tuple[threading.Thread, list]:
    """Run `store()` in a thread with its own connection, as a worker would; returns (thread, outcome)."""
    outcome = []

    def work():
        try:
            outcome.append(store())
        except Exception as error:
            outcome.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work, name="slow-store")
    thread.start()
    return thread, outcome


def _placement_proceeds_while_a_write_is_held(world, held_storage, store) -> object:
    """Hold `store()`'s write, submit and place a job of the same team, then let the write finish."""
    held_storage.hold.set()
    thread, outcome = _in_a_worker(store)
    try:
        assert held_storage.entered.wait(timeout=120), "the worker never reached its storage write"
        with connection.cursor() as cursor:  # waiting for the quota row would raise, not hang
            cursor.execute("SET lock_timeout = '5s'")
        job = job_submit(actor=world.bob, team=world.acme, kind="train", spec={})
        jobs_place_queued()
        job.refresh_from_db()
        assert job.status == "scheduled", job.status_reason
        assert thread.is_alive()  # the write was still held while the job was placed
    finally:
        held_storage.release.set()
        thread.join(timeout=120)
    [result] = outcome
    assert not isinstance(result, Exception), repr(result)
    return result


def test_a_job_is_placed_while_a_new_model_versions_file_is_being_stored(world, held_storage, noop_kind):
    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model = Model.objects.create(
        team=world.acme,
        name="iris-linear",
        task="tabular_classification",
        architecture={"family": "mlp", "hidden_sizes": [], "dropout": 0.0},
        dataset=iris.dataset,
        created_by=world.bob,
    )
    weights = {"layers.0.weight": torch.zeros(3, 4), "layers.0.bias": torch.zeros(3)}

    version = _placement_proceeds_while_a_write_is_held(
        world,
        held_storage,
        lambda: version_from_weights(
            actor=world.bob, model=model, weights=weights, spec=model.architecture, dataset_version=iris, source="train"
        ),
    )

    assert version.status == "ready"


def test_a_job_is_placed_while_an_ingested_dataset_file_is_being_stored(world, held_storage, noop_kind):
    dataset = dataset_with_version(world.acme, bundled="iris", name="iris")[0]
    options = validate_options("bundled", dataset.task, {"name": "wine", "params": {}})
    pending = DatasetVersion.objects.create(
        dataset=dataset, number=2, source_format="bundled", source_name="wine", source_options=options
    )

    version = _placement_proceeds_while_a_write_is_held(world, held_storage, lambda: version_ingest(pending))

    assert version.status == "ready"
