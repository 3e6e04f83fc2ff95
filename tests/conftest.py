import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests import processes
from tests.personas import build_world
from tests.redis_db import claimed_database
from tests.s3 import s3_bucket, s3_server, s3_storage  # noqa: F401 (fixtures of every test module)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """No persistent connections in tests: a live server's request threads would keep
    theirs open and PostgreSQL could not drop the test database at the end."""
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(scope="session", autouse=True)
def _nothing_left_running():
    """Whatever a test started through tests/processes.py and did not stop is killed at the end
    of the run (its whole process group), so no server or agent outlives the suite."""
    yield
    processes.stop_all()


@pytest.fixture(scope="session")
def redis_url():
    """A Redis URL whose database this test run alone uses (see tests/redis_db.py)."""
    with claimed_database() as url:
        yield url


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2's million rounds cost ~0.3 s per user; tests need no such protection."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Each test stores its files in its own folder (and can check what is left there)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LEPTON_CACHE_DIR = tmp_path / "cache"


@pytest.fixture(autouse=True)
def _passes_at_once(settings):
    """Placement passes run inline in tests (run_tasks): no pacing between them; likewise statistics."""
    settings.LEPTON_SCHEDULER_MIN_INTERVAL = 0
    settings.LEPTON_STATS_FLUSH_SECONDS = 0  # predict statistics written with each request


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def api_as():
    """api_as(user) -> an APIClient authenticated with a real bearer token of `user`."""
    from tests.factories import bearer

    def make(user):
        client = APIClient()
        client.credentials(**bearer(user))
        return client

    return make


@pytest.fixture
def page_as(client):
    """page_as(user) -> the Django test client logged in as `user` (session auth)."""

    def make(user):
        client.force_login(user)
        return client

    return make


@pytest.fixture
def run_tasks(monkeypatch, django_capture_on_commit_callbacks):
    """`with run_tasks(): ...` runs the tasks queued on commit inside the block, inline.

    django-q2's sync mode executes a queued task in this process, as a worker would; the
    on-commit capture makes the commit callbacks fire inside the test's transaction.
    """
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    return lambda: django_capture_on_commit_callbacks(execute=True)
