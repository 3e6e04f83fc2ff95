"""Writes to the registry: models, versions (upload or from a module), aliases.

Roles: members and above create models, add versions and move aliases; deleting a model
takes an admin or its creator; viewers read. Weights files are checked before anything
is stored; a PyTorch pickle is only ever opened by a worker, with `weights_only=True`.
"""

import re
import uuid
from pathlib import Path

from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError, RestrictedError
from django.utils import timezone

from apps.accounts.models import Role, Team, UsageRecord
from apps.accounts.quotas import check_quota, usage_record
from apps.accounts.services import require_role
from apps.core import work
from apps.core.digests import file_sha256
from apps.core.errors import ApplicationError, Conflict, PermissionDenied
from apps.core.storage import delete_stored, scratch_path, store_file, store_upload
from apps.datasets.models import Dataset, DatasetVersion
from apps.registry.architectures import SpecError, validate_spec
from apps.registry.measure import parameter_counts
from apps.registry.models import Alias, AliasMove, Evaluation, Model, ModelExport, ModelVersion, VersionSource
from apps.registry.rebuild import shape_problems
from apps.registry.weights import WeightsFileError, header_shapes, save_weights

ALIAS_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")
UPLOAD_FORMATS = {".safetensors": "safetensors", ".pt": "pytorch", ".pth": "pytorch", ".bin": "pytorch"}


def _spec_error(error: SpecError) -> ApplicationError:
    field = f"architecture.{error.field}" if error.field else "architecture"
    return ApplicationError(f"{field}: {error.message}", fields={field: [error.message]})


def checked_spec(spec, task: str) -> dict:
    try:
        return validate_spec(spec, task=task)
    except SpecError as error:
        raise _spec_error(error) from None


@transaction.atomic
def model_create(
    *, actor, team: Team, name: str, task: str, architecture: dict, dataset: Dataset | None = None, description=""
) -> Model:
    require_role(actor, team, Role.MEMBER)
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A model needs a name.", fields={"name": ["This field is required."]})
    if dataset is not None and (dataset.team_id != team.pk or dataset.task != task):
        raise ApplicationError(
            f"dataset: '{dataset.name}' is not a {task} dataset of team {team.slug}.", fields={"dataset": ["Mismatch."]}
        )
    spec = checked_spec(architecture, task)
    if Model.objects.filter(team=team, name=name).exists():
        raise Conflict(f"Team {team.slug} already has a model named '{name}'.", fields={"name": ["Already taken."]})
    try:
        with transaction.atomic():
            return Model.objects.create(
                team=team,
                name=name[:100],
                task=task,
                architecture=spec,
                dataset=dataset,
                description=description,
                created_by=actor,
            )
    except IntegrityError:  # a concurrent request took the name between the check and the insert
        raise Conflict(
            f"Team {team.slug} already has a model named '{name}'.", fields={"name": ["Already taken."]}
        ) from None


def model_delete(*, actor, model: Model) -> None:
    """Delete a model with all its versions, exports and files; their storage goes back to the quota."""
    membership = require_role(actor, model.team, Role.MEMBER)
    if not membership.has_role(Role.ADMIN) and model.created_by_id != actor.pk:
        raise PermissionDenied("Only an admin or the member who created this model can delete it.")
    with transaction.atomic():
        # Lock the model and its rows: a worker finishing an import or export now either
        # committed before (and is counted here) or finds its row gone (and removes its file).
        Model.objects.select_for_update().filter(pk=model.pk).first()
        versions = list(ModelVersion.objects.select_for_update().filter(model=model))
        exports = list(ModelExport.objects.select_for_update().filter(version__model=model))
        stored = [(v, f"model_version:{v.pk}") for v in versions] + [(e, f"model_export:{e.pk}") for e in exports]
        for row, source in stored:
            if row.bytes:
                usage_record(
                    team=model.team, kind=UsageRecord.Kind.STORAGE_BYTES, amount=-row.bytes, source=f"{source}:deleted"
                )
        Alias.objects.filter(model=model).delete()
        ModelVersion.objects.filter(model=model).update(parent=None)
        try:
            with transaction.atomic():
                model.delete()
        except (ProtectedError, RestrictedError) as error:
            objects = getattr(error, "protected_objects", None) or error.restricted_objects
            users = sorted({f"{obj._meta.verbose_name} {obj}" for obj in objects})
            raise Conflict(f"Model {model.name} is used by {', '.join(users[:3])}; delete those first.") from None
        names = [n for v in versions for n in (v.artifact, v.upload)] + [e.artifact for e in exports]
        transaction.on_commit(lambda: delete_stored(*names))


def _next_number(model: Model) -> int:
    Model.objects.select_for_update().filter(pk=model.pk).first()  # serialize version numbering
    return (model.versions.aggregate(top=Max("number"))["top"] or 0) + 1


def check_shapes(found: dict[str, list[int]], expected: dict[str, list[int]]) -> None:
    """Refuse weights whose names or shapes do not match the architecture, naming the first few."""
    problems = shape_problems(found, expected)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ApplicationError(
            f"file: the weights do not match the architecture: {shown}",
            fields={"file": ["Shapes do not match the architecture."]},
        )


def upload_format(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_FORMATS:
        raise ApplicationError(
            f"file: '{filename}' is neither .safetensors nor a PyTorch state dict (.pt, .pth, .bin).",
            fields={"file": ["Unsupported file type."]},
        )
    return UPLOAD_FORMATS[suffix]


def version_upload(
    *, actor, model: Model, uploaded_file, dataset_version: DatasetVersion, spec: dict | None = None, label: str = ""
) -> ModelVersion:
    """A version from uploaded weights. Safetensors are checked here; a pickle only in a worker."""
    from apps.registry.imports import expected_for

    require_role(actor, model.team, Role.MEMBER)
    _check_dataset_version(model, dataset_version)
    spec = checked_spec(spec or model.architecture, model.task)
    fmt = upload_format(uploaded_file.name)
    if fmt == "safetensors":
        _check_safetensors(uploaded_file, expected_for(spec, dataset_version))
    check_quota(model.team, storage_bytes=uploaded_file.size)  # fail fast, before moving the file
    # Store before taking the quota lock: moving a large file must not hold other writers up.
    stored = store_upload(uploaded_file, f"uploads/{model.team_id}/{uuid.uuid4().hex}{Path(uploaded_file.name).suffix}")
    try:
        return _create_uploaded_version(actor, model, dataset_version, spec, label, stored, fmt, uploaded_file.size)
    except Exception:
        delete_stored(stored)
        raise


@transaction.atomic
def _create_uploaded_version(actor, model, dataset_version, spec, label, stored, fmt, size) -> ModelVersion:
    """The version row, processing, and the `import` job that will check and store its weights."""
    check_quota(model.team, storage_bytes=size)
    version = ModelVersion.objects.create(
        model=model,
        number=_next_number(model),
        label=label[:100],
        source=VersionSource.UPLOAD,
        spec=spec,
        input_shape=dataset_version.sample_shape,
        num_classes=len(dataset_version.class_names),
        class_names=dataset_version.class_names,
        preprocessing=dataset_version.preprocessing,
        trained_on=dataset_version,
        upload=stored,
        upload_format=fmt,
        created_by=actor,
    )
    version.produced_by_job = work.request(
        "import", actor=actor, team=model.team, spec={"model": model.pk, "version": version.number}
    )
    version.save(update_fields=["produced_by_job"])
    return version


def _check_dataset_version(model: Model, dataset_version: DatasetVersion) -> None:
    if dataset_version.dataset.team_id != model.team_id or dataset_version.dataset.task != model.task:
        raise ApplicationError(
            "dataset: not a dataset of this model's team and task.", fields={"dataset": ["Mismatch."]}
        )
    if dataset_version.status != DatasetVersion.Status.READY:
        raise ApplicationError(
            f"dataset: version {dataset_version.number} is {dataset_version.status}, not ready.",
            fields={"dataset": ["Not ready."]},
        )


def _check_safetensors(uploaded_file, expected: dict[str, list[int]]) -> None:
    path = getattr(uploaded_file, "temporary_file_path", None)
    with scratch_path(".safetensors") as copy:
        if path is None:  # a small upload kept in memory: the header reader wants a file
            with copy.open("wb") as out:
                for chunk in uploaded_file.chunks():
                    out.write(chunk)
            uploaded_file.seek(0)
        try:
            found = header_shapes(path() if path else copy)
        except WeightsFileError as error:
            raise ApplicationError(f"file: {error}", fields={"file": [str(error)]}) from None
    check_shapes(found, expected)


def version_from_weights(
    *,
    actor,
    model: Model,
    weights: dict,
    spec: dict,
    dataset_version: DatasetVersion | None,
    source: str,
    parent: ModelVersion | None = None,
    transforms: list | None = None,
    label: str = "",
    job_id: int | None = None,
    input_shape=None,
    class_names=None,
    preprocessing=None,
    fence=lambda: None,
) -> ModelVersion:
    """A ready version from a state dict in memory (what training and compression jobs store).

    The file is stored first, outside any lock; then the quota is checked and the row and its
    storage recorded in one transaction (the file is deleted again if that refuses). What the
    inputs look like (shape, classes, preprocessing) comes from the dataset version, else from
    the parent, unless given. `fence` runs in that transaction: a job's lease check, so an
    attempt that lost its job stores nothing.
    """
    origin = dataset_version or parent
    name, size, digest = _store_weights(model, weights)
    total, nonzero = parameter_counts(weights)
    try:
        with transaction.atomic():
            fence()
            check_quota(model.team, storage_bytes=size)
            version = ModelVersion.objects.create(
                model=model,
                number=_next_number(model),
                label=label[:100],
                source=source,
                spec=spec,
                input_shape=list(input_shape or (origin.sample_shape if dataset_version else origin.input_shape)),
                num_classes=len(class_names or origin.class_names),
                class_names=class_names or origin.class_names,
                preprocessing=preprocessing or origin.preprocessing,
                transforms=transforms or [],
                parent=parent,
                trained_on=dataset_version,
                produced_by_job=job_id,
                artifact=name,
                bytes=size,
                sha256=digest,
                parameter_count=total,
                nonzero_parameters=nonzero,
                status=ModelVersion.Status.READY,
                finished_at=timezone.now(),
                created_by=actor,
            )
            usage_record(
                team=model.team, kind=UsageRecord.Kind.STORAGE_BYTES, amount=size, source=f"model_version:{version.pk}"
            )
    except Exception:
        delete_stored(name)
        raise
    return version


def _store_weights(model: Model, weights: dict) -> tuple[str, int, str]:
    """The weights saved in Lepton's layout and moved into storage: (name, bytes, sha256)."""
    with scratch_path(".safetensors") as out:
        size = save_weights(out, weights)
        digest = file_sha256(out)
        check_quota(model.team, storage_bytes=size)  # fail fast, before storing; checked again under the lock
        name = store_file(out, f"models/{model.team_id}/{model.pk}/{uuid.uuid4().hex}.safetensors")
    return name, size, digest


@transaction.atomic
def alias_set(*, actor, model: Model, name: str, version: ModelVersion) -> Alias:
    """Point alias `name` at `version` (creating it, or moving it and keeping the history)."""
    require_role(actor, model.team, Role.MEMBER)
    name = (name or "").strip().lower()
    if not ALIAS_NAME.fullmatch(name):
        raise ApplicationError("name: an alias is 1-50 letters, digits, '-' or '_'.", fields={"name": ["Invalid."]})
    if version.model_id != model.pk:
        raise ApplicationError("version: not a version of this model.", fields={"version": ["Wrong model."]})
    if version.status != ModelVersion.Status.READY:
        raise ApplicationError(
            f"version: v{version.number} is {version.status}; only ready versions take aliases.",
            fields={"version": ["Not ready."]},
        )
    alias = Alias.objects.select_for_update().filter(model=model, name=name).first()
    previous = alias.version if alias else None
    if alias is None:
        try:
            with transaction.atomic():
                alias = Alias.objects.create(model=model, name=name, version=version)
        except IntegrityError:  # created concurrently: move that one instead
            alias = Alias.objects.select_for_update().get(model=model, name=name)
            previous = alias.version
            alias.version, alias.updated_at = version, timezone.now()
            alias.save(update_fields=["version", "updated_at"])
    elif previous.pk != version.pk:
        alias.version, alias.updated_at = version, timezone.now()
        alias.save(update_fields=["version", "updated_at"])
    if previous is None or previous.pk != version.pk:
        AliasMove.objects.create(alias=alias, from_version=previous, to_version=version, moved_by=actor)
    return alias


@transaction.atomic
def alias_delete(*, actor, alias: Alias) -> None:
    require_role(actor, alias.model.team, Role.MEMBER)
    alias.delete()


# --- rows made by jobs -----------------------------------------------------------------------------------------

WORK_ROWS = (ModelVersion, Evaluation, ModelExport)


def results_end_with_job(sender, *, job_id: int, succeeded: bool, reason: str, **kwargs) -> None:
    """`work_ended`: what the job left processing fails with its reason (and uploaded weights go)."""
    why = "its job ended without storing a result" if succeeded else reason or "its job failed"
    now = timezone.now()
    for model in WORK_ROWS:
        unfinished = model.objects.filter(produced_by_job=job_id, status=model.Status.PROCESSING)
        if model is ModelVersion:
            uploads = [name for name in unfinished.values_list("upload", flat=True) if name]
            if uploads:
                transaction.on_commit(lambda uploads=uploads: delete_stored(*uploads))
            unfinished.update(status=model.Status.FAILED, error=why, finished_at=now, upload="")
        else:
            unfinished.update(status=model.Status.FAILED, error=why, finished_at=now)


def results_reopen_with_job(sender, *, job_id: int, **kwargs) -> None:
    """`work_retrying`: the job's failed evaluations and exports are processing again; an import cannot be."""
    failed_import = ModelVersion.objects.filter(produced_by_job=job_id, status=ModelVersion.Status.FAILED).first()
    if failed_import is not None:
        raise Conflict(f"{failed_import}: its upload was deleted when the import failed; upload the file again.")
    for model in (Evaluation, ModelExport):
        model.objects.filter(produced_by_job=job_id, status=model.Status.FAILED).update(
            status=model.Status.PROCESSING, error="", finished_at=None
        )
