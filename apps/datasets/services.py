"""Every write to datasets: create, delete, add versions, and the ingest a worker runs.

Roles: members and above create datasets and add versions; deleting a dataset takes
an admin or the member who created it; viewers read. A new version asks for an `ingest` job
(apps.core.work) in the same transaction; the job runs `version_ingest`, and the version's
row keeps only the result and `produced_by_job`.
"""

import uuid
from collections.abc import Callable
from pathlib import Path

from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError
from django.utils import timezone

from apps.accounts.models import Role, Team, UsageRecord
from apps.accounts.quotas import check_quota, usage_record
from apps.accounts.services import require_role
from apps.core import work
from apps.core.errors import ApplicationError, Conflict, PermissionDenied
from apps.core.storage import delete_stored, local_path, scratch_path, store_file, store_upload
from apps.datasets.ingest.pipeline import build_version_file
from apps.datasets.ingest.source import IMAGE
from apps.datasets.models import Dataset, DatasetVersion, SourceFormat, Task
from apps.datasets.sources import read_source, validate_options


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
    )
    version.produced_by_job = work.request(
        "ingest", actor=actor, team=dataset.team, spec={"dataset": dataset.pk, "version": version.number}
    )
    version.save(update_fields=["produced_by_job"])
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


@transaction.atomic
def version_bundled(*, actor, dataset: Dataset, name: str, params: dict | None = None, seed: int = 0) -> DatasetVersion:
    """A new version from a bundled set (scikit-learn's or synthetic)."""
    require_role(actor, dataset.team, Role.MEMBER)
    options = validate_options(SourceFormat.BUNDLED, dataset.task, {"name": name, "params": params or {}, "seed": seed})
    return _create_version(
        actor=actor, dataset=dataset, source_format=SourceFormat.BUNDLED, source_name=name, options=options
    )


# --- the worker's side --------------------------------------------------------------------


def version_ingest(
    version: DatasetVersion,
    *,
    report: Callable[[float, str], None] = lambda fraction, message: None,
    fence: Callable[[], None] = lambda: None,
) -> DatasetVersion:
    """Read the version's source, build its tensor file and mark it ready (what the ingest job runs).

    A version that is no longer processing was finished by an earlier attempt: nothing to do.
    `fence` runs inside the transaction that stores the result (the job's lease check), so a
    stale attempt stores nothing. A bad source raises IngestError with the place named.
    """
    if version.status != DatasetVersion.Status.PROCESSING:
        return version
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
        _finish_ready(version, result, out, preview if source.kind == IMAGE else None, fence)
    version.refresh_from_db()
    return version


def _artifact_names(version: DatasetVersion) -> tuple[str, str]:
    base = f"datasets/{version.dataset.team_id}/{version.dataset_id}/v{version.number}-{uuid.uuid4().hex[:8]}"
    return f"{base}.safetensors", f"{base}-preview.png"


def _finish_ready(version, result, out: Path, preview: Path | None, fence: Callable[[], None]) -> None:
    """Store the files, then mark the version ready and record its storage under the quota lock.

    The files go first, outside any lock (moving a large file must not hold other writers up),
    and are deleted again if the quota, the lease or the row refuses.
    """
    artifact_name, preview_name = _artifact_names(version)
    stored = [store_file(out, artifact_name)]
    try:
        if preview is not None:
            stored.append(store_file(preview, preview_name))
        with transaction.atomic():
            fence()
            check_quota(version.dataset.team, storage_bytes=result.bytes)  # the finished file must fit
            _mark_ready(version, result, artifact_name, preview_name if preview is not None else "")
    except Exception:
        delete_stored(*stored)
        raise
    delete_stored(version.upload)


def _mark_ready(version: DatasetVersion, result, artifact_name: str, preview_name: str) -> None:
    updated = DatasetVersion.objects.filter(pk=version.pk, status=DatasetVersion.Status.PROCESSING).update(
        status=DatasetVersion.Status.READY,
        finished_at=timezone.now(),
        artifact=artifact_name,
        preview_image=preview_name,
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
    if not updated:
        raise Conflict(f"{version} was deleted or failed while it was being ingested.")
    usage_record(
        team=version.dataset.team,
        kind=UsageRecord.Kind.STORAGE_BYTES,
        amount=result.bytes,
        source=f"dataset_version:{version.pk}",
    )


def versions_end_with_job(sender, *, job_id: int, succeeded: bool, reason: str, **kwargs) -> None:
    """`work_ended`: versions the job left processing fail with its reason, and their uploads go."""
    unfinished = DatasetVersion.objects.filter(produced_by_job=job_id, status=DatasetVersion.Status.PROCESSING)
    uploads = [name for name in unfinished.values_list("upload", flat=True) if name]
    why = "its ingest job ended without storing it" if succeeded else reason or "its ingest job failed"
    unfinished.update(status=DatasetVersion.Status.FAILED, error=why, upload="", finished_at=timezone.now())
    if uploads:
        transaction.on_commit(lambda: delete_stored(*uploads))


def versions_reopen_with_job(sender, *, job_id: int, **kwargs) -> None:
    """`work_retrying`: the job's failed versions are processed again, if their source is still there."""
    failed = DatasetVersion.objects.filter(produced_by_job=job_id, status=DatasetVersion.Status.FAILED)
    for version in failed:
        if not version.upload and version.source_format != SourceFormat.BUNDLED:
            raise Conflict(f"{version}: its upload was deleted when the ingest failed; upload the file again.")
    failed.update(status=DatasetVersion.Status.PROCESSING, error="", finished_at=None)
