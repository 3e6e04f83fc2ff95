"""Every write to datasets: create, delete, add versions, and the ingest a worker runs.

Roles: members and above create datasets and add versions; deleting a dataset takes
an admin or the member who created it; viewers read.
"""

import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError
from django.utils import timezone

from apps.accounts.models import Role, Team, UsageRecord
from apps.accounts.quotas import check_quota, usage_record
from apps.accounts.services import require_role
from apps.core.errors import ApplicationError, Conflict, PermissionDenied, QuotaExceeded
from apps.core.leases import LeasedRunner
from apps.core.storage import delete_stored, local_path, scratch_path, store_file
from apps.datasets.ingest.errors import IngestError
from apps.datasets.ingest.pipeline import build_version_file
from apps.datasets.ingest.source import IMAGE
from apps.datasets.models import Dataset, DatasetVersion, SourceFormat, Task
from apps.datasets.sources import read_source, validate_options

INGEST_TASK = "apps.datasets.tasks.ingest_version"


@transaction.atomic
def dataset_create(*, actor, team: Team, name: str, task: str, description: str = "") -> Dataset:
    require_role(actor, team, Role.MEMBER)
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A dataset needs a name.", fields={"name": ["This field is required."]})
    if task not in Task.values:
        raise ApplicationError(
            f"Unknown task '{task}'; use one of {', '.join(Task.values)}.", fields={"task": ["Unknown task."]}
        )
    if Dataset.objects.filter(team=team, name=name).exists():
        raise Conflict(f"Team {team.slug} already has a dataset named '{name}'.", fields={"name": ["Already taken."]})
    try:
        with transaction.atomic():
            return Dataset.objects.create(
                team=team, name=name[:100], task=task, description=description, created_by=actor
            )
    except IntegrityError:  # a concurrent request took the name between the check and the insert
        raise Conflict(
            f"Team {team.slug} already has a dataset named '{name}'.", fields={"name": ["Already taken."]}
        ) from None


def dataset_delete(*, actor, dataset: Dataset) -> None:
    """Delete a dataset with its versions and files; the storage is given back to the quota."""
    membership = require_role(actor, dataset.team, Role.MEMBER)
    if not membership.has_role(Role.ADMIN) and dataset.created_by_id != actor.pk:
        raise PermissionDenied("Only an admin or the member who created this dataset can delete it.")
    with transaction.atomic():
        # Lock the dataset and its versions: an ingest finishing now either committed before
        # (and is counted here) or finds its row gone (and removes its own file).
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        versions = list(DatasetVersion.objects.select_for_update().filter(dataset=dataset))
        for version in versions:
            if version.bytes:
                usage_record(
                    team=dataset.team,
                    kind=UsageRecord.Kind.STORAGE_BYTES,
                    amount=-version.bytes,
                    source=f"dataset_version:{version.pk}:deleted",
                )
        try:
            with transaction.atomic():
                dataset.delete()
        except ProtectedError as error:
            users = sorted({str(obj) for obj in error.protected_objects})[:3]
            raise Conflict(
                f"Dataset {dataset.name} is used by {', '.join(users)}; delete or retarget those first."
            ) from None
        names = [name for v in versions for name in (v.artifact, v.preview_image, v.upload)]
        transaction.on_commit(lambda: delete_stored(*names))


def _next_number(dataset: Dataset) -> int:
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()  # serialize version numbering
    return (dataset.versions.aggregate(top=Max("number"))["top"] or 0) + 1


def _create_version(
    *, actor, dataset: Dataset, source_format: str, source_name: str, options: dict, upload="", upload_bytes=0
) -> DatasetVersion:
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=_next_number(dataset),
        source_format=source_format,
        source_name=source_name[:255],
        source_options=options,
        upload=upload,
        upload_bytes=upload_bytes,
        split_seed=options.get("seed", 0),
        created_by=actor,
        attempts=1,
        heartbeat_at=timezone.now(),
    )
    INGEST.dispatch(version)
    return version


def guess_format(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    formats = {".csv": SourceFormat.CSV, ".npz": SourceFormat.NPZ, ".zip": SourceFormat.IMAGE_ZIP}
    if suffix not in formats:
        raise ApplicationError(
            f"Cannot tell the format of '{filename}'; upload a .csv, .npz or .zip, or name the format.",
            fields={"format": ["Unknown format."]},
        )
    return formats[suffix]


def version_upload(
    *, actor, dataset: Dataset, uploaded_file, source_format: str | None, options: dict
) -> DatasetVersion:
    """A new version from an uploaded file; the file is checked and converted by a worker."""
    require_role(actor, dataset.team, Role.MEMBER)
    source_format = source_format or guess_format(uploaded_file.name)
    options = validate_options(source_format, dataset.task, options)
    check_quota(dataset.team, storage_bytes=uploaded_file.size)  # fail fast, before moving the file
    # Store before taking the quota lock: moving a large file must not hold other writers up.
    name = f"uploads/{dataset.team_id}/{uuid.uuid4().hex}{Path(uploaded_file.name).suffix.lower()}"
    stored = store_upload(uploaded_file, name)
    try:
        with transaction.atomic():
            check_quota(dataset.team, storage_bytes=uploaded_file.size)
            return _create_version(
                actor=actor,
                dataset=dataset,
                source_format=source_format,
                source_name=uploaded_file.name,
                options=options,
                upload=stored,
                upload_bytes=uploaded_file.size,
            )
    except Exception:
        delete_stored(stored)
        raise


def store_upload(uploaded_file, name: str) -> str:
    """Move the request's temp file into storage (a rename when both are on one disk)."""
    return default_storage.save(name, uploaded_file)


@transaction.atomic
def version_bundled(*, actor, dataset: Dataset, name: str, params: dict | None = None, seed: int = 0) -> DatasetVersion:
    """A new version from a bundled set (scikit-learn's or synthetic)."""
    require_role(actor, dataset.team, Role.MEMBER)
    options = validate_options(SourceFormat.BUNDLED, dataset.task, {"name": name, "params": params or {}, "seed": seed})
    return _create_version(
        actor=actor, dataset=dataset, source_format=SourceFormat.BUNDLED, source_name=name, options=options
    )


# --- the worker's side --------------------------------------------------------------------


def _delete_upload(version: DatasetVersion) -> None:
    delete_stored(version.upload)


INGEST = LeasedRunner(
    DatasetVersion,
    INGEST_TASK,
    expected_errors=(IngestError, QuotaExceeded),
    on_fail=_delete_upload,
    fields_on_fail={"upload": ""},
)


def version_ingest(version_id: int, attempt: int) -> None:
    """Run attempt `attempt` of a version's ingest (what the worker's task calls)."""
    INGEST.run(version_id, attempt, lambda version, report: _ingest(version, attempt, report))


def _ingest(version: DatasetVersion, attempt: int, report) -> None:
    with scratch_path(".safetensors") as out, scratch_path(".png") as preview:
        upload = local_path(version.upload) if version.upload else None
        source = read_source(version, upload, progress=lambda f, m: report(0.6 * f, m))
        result = build_version_file(
            source,
            out_path=out,
            preview_path=preview,
            seed=version.split_seed,
            progress=lambda f, m: report(0.6 + 0.35 * f, m),
        )
        _finish_ready(version, attempt, result, out, preview if source.kind == IMAGE else None)


def _artifact_names(version: DatasetVersion) -> tuple[str, str]:
    base = f"datasets/{version.dataset.team_id}/{version.dataset_id}/v{version.number}-{uuid.uuid4().hex[:8]}"
    return f"{base}.safetensors", f"{base}-preview.png"


def _finish_ready(version, attempt, result, out: Path, preview: Path | None) -> None:
    """Store the files, mark the version ready and record its storage, all or nothing."""
    artifact_name, preview_name = _artifact_names(version)
    team = version.dataset.team
    stored = []
    try:
        with transaction.atomic():
            check_quota(team, storage_bytes=result.bytes)  # the finished file, not the upload, must fit
            stored.append(store_file(out, artifact_name))
            if preview is not None:
                stored.append(store_file(preview, preview_name))
            INGEST.complete(
                version.pk,
                attempt,
                artifact=artifact_name,
                preview_image=preview_name if preview is not None else "",
                sha256=result.sha256,
                bytes=result.bytes,
                sample_count=result.sample_count,
                sample_shape=result.sample_shape,
                feature_names=result.feature_names,
                class_names=result.class_names,
                class_counts=result.class_counts,
                split_counts=result.split_counts,
                preprocessing=result.preprocessing,
                preview=result.preview,
                upload="",
            )
            usage_record(
                team=team,
                kind=UsageRecord.Kind.STORAGE_BYTES,
                amount=result.bytes,
                source=f"dataset_version:{version.pk}",
            )
    except Exception:
        delete_stored(*stored)
        raise
    _delete_upload(version)


def versions_reap_stale() -> int:
    """Re-dispatch ingests whose worker went silent (while their upload is kept), or fail them."""
    return INGEST.reap(
        stale_seconds=settings.LEPTON_WORK_STALE_SECONDS,
        max_attempts=settings.LEPTON_WORK_MAX_ATTEMPTS,
        can_retry=lambda v: bool(v.upload) or v.source_format == SourceFormat.BUNDLED,
    )
