"""What the workers run for datasets: fetch by id, call the service."""

from apps.datasets import services


def ingest_version(version_id: int, attempt: int) -> None:
    services.version_ingest(version_id, attempt)


def reap_stale_versions() -> int:
    return services.versions_reap_stale()
