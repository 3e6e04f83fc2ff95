"""The SDK and CLI against a live server (pytest-django's, in this process), tasks run inline by it."""

import csv

import pytest

from lepton_ai import Client
from tests.factories import bearer, online_node


@pytest.fixture(autouse=True)
def _inline_work(monkeypatch, settings):
    """The live server runs queued work (ingests, jobs) inline, as a worker would; no heartbeat thread."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    settings.LEPTON_HEARTBEAT_THREAD = False


@pytest.fixture(autouse=True)
def cpu_node(db):
    """Every piece of work (an upload's ingest too) is a job: a node to place it on."""
    return online_node("cpu-1", slots=4)


def token_of(user) -> str:
    return bearer(user)["HTTP_AUTHORIZATION"].removeprefix("Bearer ")


@pytest.fixture
def sdk_as(live_server):
    """sdk_as(user) -> a Client of the live server with a fresh API token of `user`."""
    clients = []

    def make(user, **kwargs):
        clients.append(Client(live_server.url, token_of(user), **kwargs))
        return clients[-1]

    yield make
    for client in clients:  # kept-alive connections would hold live-server threads open past the test
        client.http.session.close()


@pytest.fixture
def iris_csv(tmp_path):
    """scikit-learn's iris as a CSV with a header and string labels."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    path = tmp_path / "iris.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*iris.feature_names, "species"])
        for row, label in zip(iris.data, iris.target, strict=True):
            writer.writerow([*row, iris.target_names[label]])
    return path
