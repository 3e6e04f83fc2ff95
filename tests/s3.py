"""A real S3 HTTP API for tests: moto's server, a separate process on a loopback port.

The session starts one server (`s3_server`); each test that stores on S3 gets a bucket of its
own (`s3_bucket`), and either this process's storage pointed at it (`s3_storage`) or the env
that points Lepton processes at it (`S3Bucket.env`). Nothing here is moto's in-process mock:
every call goes over HTTP to the server, as it would to AWS, MinIO or Ceph.
"""

import socket
import sys
import urllib.request
import uuid
from dataclasses import dataclass

import pytest

from tests.processes import start_program, stop, wait_until

REGION = "us-east-1"
KEYS = {"AWS_ACCESS_KEY_ID": "lepton-test", "AWS_SECRET_ACCESS_KEY": "lepton-test-secret"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):  # noqa: S310 (a loopback URL)
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def s3_server():
    """The endpoint URL of a moto server this run started (stopped with SIGTERM, then SIGKILL)."""
    url = f"http://127.0.0.1:{_free_port()}"
    server = start_program([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", url.rsplit(":", 1)[1]])
    try:
        wait_until(lambda: _answers(url) or server.poll() is not None, seconds=60, what="the S3 server")
        assert server.poll() is None, stop(server)
        yield url
    finally:
        stop(server)


@dataclass
class S3Bucket:
    endpoint: str
    name: str

    @property
    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
        )

    @property
    def env(self) -> dict:
        """What a Lepton process needs to store here (the one-variable form of the settings)."""
        return {"LEPTON_STORAGE_URL": f"s3://{self.name}?endpoint_url={self.endpoint}&region={REGION}", **KEYS}

    def object_keys(self) -> list[str]:
        """Every object's key, through the S3 API's own listing."""
        found, token = [], {}
        while True:
            page = self.client.list_objects_v2(Bucket=self.name, **token)
            found += [item["Key"] for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return found
            token = {"ContinuationToken": page["NextContinuationToken"]}


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket of this test's own on the run's S3 server."""
    bucket = S3Bucket(s3_server, f"lepton-{uuid.uuid4().hex[:16]}")
    bucket.client.create_bucket(Bucket=bucket.name)
    return bucket


@pytest.fixture
def s3_storage(settings, s3_bucket, monkeypatch):
    """This process's default storage on the test's bucket (as LEPTON_STORAGE_URL would set it)."""
    from lepton_web.env import s3_storage

    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    options = {"bucket_name": s3_bucket.name, "endpoint_url": s3_bucket.endpoint, "region_name": REGION}
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage(options, part_bytes=5 * 1024**2, url_seconds=60)}
    return s3_bucket
