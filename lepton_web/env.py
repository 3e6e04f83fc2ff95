"""Typed readers for settings that come from environment variables.

Each reader names the variable in its error, so a typo in a deployment fails at
start-up with a message an operator can act on instead of a silent default.
"""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer; got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


_S3_URL_OPTIONS = {"endpoint_url": "endpoint_url", "region": "region_name", "region_name": "region_name"}


def env_s3_options() -> dict | None:
    """django-storages' S3 options, or None for the local filesystem (the default).

    Either LEPTON_STORAGE_URL (`s3://bucket?endpoint_url=http://host:9000&region=eu-west-1`) or
    the usual names (AWS_STORAGE_BUCKET_NAME, AWS_S3_ENDPOINT_URL, AWS_S3_REGION_NAME); the keys
    come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or boto3's other sources) either way.
    """
    from urllib.parse import parse_qsl, urlsplit

    url = env_str("LEPTON_STORAGE_URL").strip()
    options = {
        "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
        "endpoint_url": env_str("AWS_S3_ENDPOINT_URL"),
        "region_name": env_str("AWS_S3_REGION_NAME"),
    }
    if url:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ImproperlyConfigured(f"LEPTON_STORAGE_URL must look like s3://bucket?endpoint_url=…; got {url!r}")
        options["bucket_name"] = parts.netloc
        for key, value in parse_qsl(parts.query):
            if key not in _S3_URL_OPTIONS:
                known = ", ".join(sorted(_S3_URL_OPTIONS))
                raise ImproperlyConfigured(f"LEPTON_STORAGE_URL: unknown option {key!r} (known: {known})")
            options[_S3_URL_OPTIONS[key]] = value
    if not options["bucket_name"]:
        return None
    return {key: value for key, value in options.items() if value}


def s3_storage(options: dict, *, part_bytes: int, url_seconds: int) -> dict:
    """The STORAGES entry of an S3-compatible bucket (django-storages' S3Storage) with `options`."""
    from boto3.s3.transfer import TransferConfig  # only deployments on S3 pay for importing boto3

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            **options,
            "file_overwrite": False,  # artifact names are never reused: a clash is a bug, not a replace
            "signature_version": "s3v4",
            # a custom endpoint (MinIO, moto, Ceph) on a bare host name answers path-style only
            "addressing_style": "path" if "endpoint_url" in options else None,
            "querystring_expire": url_seconds,  # presigned downloads live this long
            # a managed multipart upload streamed from the file: a few parts in memory, never the whole file
            "transfer_config": TransferConfig(
                multipart_threshold=part_bytes, multipart_chunksize=part_bytes, max_concurrency=4
            ),
        },
    }
