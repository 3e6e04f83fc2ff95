"""Exporting a version to ONNX in a worker, checked by running it in onnxruntime."""

import uuid

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Role, UsageRecord
from apps.accounts.quotas import check_quota, usage_record
from apps.accounts.services import require_role
from apps.core.errors import ApplicationError, QuotaExceeded
from apps.core.leases import LeasedRunner
from apps.core.storage import delete_stored, scratch_path, store_file
from apps.registry.loading import version_module
from apps.registry.models import ModelExport, ModelVersion
from apps.registry.onnx_export import OnnxMismatch, export_onnx_checked

EXPORT_TASK = "apps.registry.tasks.export_version"
EXPORT = LeasedRunner(ModelExport, EXPORT_TASK, expected_errors=(ApplicationError, OnnxMismatch, QuotaExceeded))


@transaction.atomic
def export_request(*, actor, version: ModelVersion, format: str = ModelExport.Format.ONNX) -> ModelExport:
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
        return export  # versions never change, so one export per format is enough
    if export is not None:
        export.delete()
    export = ModelExport.objects.create(
        version=version, format=format, requested_by=actor, attempts=1, heartbeat_at=timezone.now()
    )
    EXPORT.dispatch(export)
    return export


def export_run(export_id: int, attempt: int) -> None:
    EXPORT.run(export_id, attempt, lambda export, report: _export(export, attempt, report))


def _export(export: ModelExport, attempt: int, report) -> None:
    version = export.version
    module = version_module(version)
    report(0.3, "exporting to ONNX")
    with scratch_path(".onnx") as out:
        diff = export_onnx_checked(module, tuple(version.input_shape), out)
        size = out.stat().st_size
        name = store_file(
            out, f"exports/{version.model.team_id}/{version.model_id}/v{version.number}-{uuid.uuid4().hex[:8]}.onnx"
        )
    team = version.model.team
    try:
        with transaction.atomic():
            check_quota(team, storage_bytes=size)
            EXPORT.complete(export.pk, attempt, artifact=name, bytes=size, max_abs_diff=diff)
            usage_record(
                team=team, kind=UsageRecord.Kind.STORAGE_BYTES, amount=size, source=f"model_export:{export.pk}"
            )
    except Exception:
        delete_stored(name)
        raise
