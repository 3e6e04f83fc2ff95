"""A Redis database of this test run's own, so two runs on one server never share a queue.

Tests that start real processes on the Redis broker put every task in django-q2's lists
(`django_q:lepton:q`, `django_q:lepton-node-<name>:q`). Two test runs (two CI jobs, or a
developer's run beside CI) on one fixed index would take each other's tasks. Each run claims
a free database index instead: `SET ... NX` of a claim key, held while the run lasts.
"""

import contextlib
import os
import socket
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

CLAIM_KEY = "lepton:test-run-claim"
CLAIM_SECONDS = 6 * 3600  # a run that dies without releasing frees its index after this long


def base_url() -> str:
    """The server to use: LEPTON_TEST_REDIS_URL (CI sets it), else a local one if it answers."""
    url = os.environ.get("LEPTON_TEST_REDIS_URL")
    if url:
        return url
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("no Redis on 127.0.0.1:6379 and LEPTON_TEST_REDIS_URL is not set")
    return "redis://127.0.0.1:6379/15"


def with_db(url: str, index: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{index}"))


def claim(url: str, token: str) -> int:
    """The first database index (the URL's own first, then 15 down to 1) that no live run holds."""
    import redis

    preferred = int(urlsplit(url).path.strip("/") or 15)
    for index in dict.fromkeys([preferred, *range(15, 0, -1)]):
        client = redis.Redis.from_url(with_db(url, index))
        if client.set(CLAIM_KEY, token, nx=True, ex=CLAIM_SECONDS):
            # what an earlier, dead run left in it is not ours to read: start empty, keep the claim
            for key in client.scan_iter(match="django_q:*"):
                client.delete(key)
            return index
    raise RuntimeError(f"every Redis database on {url} is claimed by another test run")


def release(url: str, index: int, token: str) -> None:
    import redis

    client = redis.Redis.from_url(with_db(url, index))
    with contextlib.suppress(redis.RedisError):
        for key in client.scan_iter(match="django_q:*"):
            client.delete(key)
        if client.get(CLAIM_KEY) == token.encode():
            client.delete(CLAIM_KEY)


@contextlib.contextmanager
def claimed_database():
    """`with claimed_database() as url:` a Redis URL whose database this run alone uses."""
    url = base_url()
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    index = claim(url, token)
    try:
        yield with_db(url, index)
    finally:
        release(url, index, token)
