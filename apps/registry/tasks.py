"""What the workers run for the registry: fetch by id, call the service."""

from django.conf import settings

from apps.registry.evaluations import EVALUATE, evaluation_run
from apps.registry.exports import EXPORT, export_run
from apps.registry.imports import IMPORT, version_import


def import_version(version_id: int, attempt: int) -> None:
    version_import(version_id, attempt)


def evaluate_version(evaluation_id: int, attempt: int) -> None:
    evaluation_run(evaluation_id, attempt)


def export_version(export_id: int, attempt: int) -> None:
    export_run(export_id, attempt)


def reap_stale_work() -> int:
    """Re-dispatch (or fail) imports, evaluations and exports whose worker went silent."""
    limits = {"stale_seconds": settings.LEPTON_WORK_STALE_SECONDS, "max_attempts": settings.LEPTON_WORK_MAX_ATTEMPTS}
    return (
        IMPORT.reap(**limits, can_retry=lambda version: bool(version.upload))
        + EVALUATE.reap(**limits)
        + EXPORT.reap(**limits)
    )
