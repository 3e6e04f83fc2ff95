"""Exporting a version to ONNX as an `export` job, checked by running it in onnxruntime."""

import uuid
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Role, UsageRecord
from apps.accounts.quotas import check_quota, usage_record
from apps.accounts.services import require_role
from apps.core import work
from apps.core.errors import ApplicationError, Conflict
from apps.core.storage import delete_stored, scratch_path, store_file
from apps.registry.loading import version_module
from apps.registry.models import ModelExport, ModelVersion
from apps.registry.onnx_export import export_onnx_checked


@transaction.atomic
def export_request(*, actor, version: ModelVersion, format: str = ModelExport.Format.ONNX) -> ModelExport:
    """Queue the export of `version` (versions never change, so one export per format is enough)."""
    require_role(actor, version.model.team, Role.MEMBER)
    if format not in ModelExport.Format.values:
        raise ApplicationError(
            f"format: '{format}' is not an export format; use onnx.", fields={"format": ["Unknown."]}
        )
    if version.status != ModelVersion.Status.READY:
        raise ApplicationError(
            f"version: v{version.number} is {version.status}, not ready.", fields={"version": ["Not ready."]}
        )
    export = ModelExport.objects.select_for_update().filter(version=version, format=format).first()
    if export is not None and export.status in (ModelExport.Status.PROCESSING, ModelExport.Status.READY):
        return export
    if export is not None:
        export.delete()  # a failed one: try again from scratch
    export = ModelExport.objects.create(version=version, format=format, requested_by=actor)
    export.produced_by_job = work.request(
        "export",
        actor=actor,
        team=version.model.team,
        spec={"model": version.model_id, "version": version.number, "format": format},
    )
    export.save(update_fields=["produced_by_job"])
    return export


def export_run(
    export: ModelExport,
    *,
    report: Callable[[float, str], None] = lambda fraction, message: None,
    fence: Callable[[], None] = lambda: None,
) -> ModelExport:
    """Export, check in onnxruntime and store the file (what the export job runs)."""
    if export.status != ModelExport.Status.PROCESSING:
        return export  # an earlier attempt finished it
    version = export.version
    module = version_module(version)
    report(0.3, "exporting to ONNX")
    with scratch_path(".onnx") as out:
        diff = export_onnx_checked(module, tuple(version.input_shape), out)
        size = out.stat().st_size
        name = store_file(
            out, f"exports/{version.model.team_id}/{version.model_id}/v{version.number}-{uuid.uuid4().hex[:8]}.onnx"
        )
    try:
        with transaction.atomic():
            fence()
            check_quota(version.model.team, storage_bytes=size)
            _mark_ready(export, name=name, size=size, diff=diff)
    except Exception:
        delete_stored(name)
        raise
    export.refresh_from_db()
    return export


def _mark_ready(export: ModelExport, *, name: str, size: int, diff: float) -> None:
    updated = ModelExport.objects.filter(pk=export.pk, status=ModelExport.Status.PROCESSING).update(
        status=ModelExport.Status.READY, finished_at=timezone.now(), artifact=name, bytes=size, max_abs_diff=diff
    )
    if not updated:
        raise Conflict(f"the {export.format} export of {export.version} was deleted while it ran.")
    usage_record(
        team=export.version.model.team,
        kind=UsageRecord.Kind.STORAGE_BYTES,
        amount=size,
        source=f"model_export:{export.pk}",
    )
