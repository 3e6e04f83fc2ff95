"""Importing uploaded weights (the worker's side): read safely, check, re-save as safetensors.

A PyTorch file is opened only here, in a worker, and only with `torch.load(weights_only=True)`:
a pickle that would run code is refused by torch's restricted unpickler before anything in
it runs. Whatever the upload's format, the stored artifact is Lepton's safetensors layout.
"""

import uuid
from collections.abc import Callable

import torch
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import UsageRecord
from apps.accounts.quotas import check_quota, usage_record
from apps.core.digests import file_sha256
from apps.core.errors import ApplicationError, Conflict
from apps.core.storage import delete_stored, local_path, scratch_path, store_file
from apps.datasets.models import DatasetVersion
from apps.registry.measure import parameter_counts
from apps.registry.models import ModelVersion
from apps.registry.rebuild import expected_shapes, shape_problems
from apps.registry.weights import WeightsFileError, load_weights, save_weights


class WeightsRefused(ApplicationError):
    """Uploaded weights that cannot become a version; the message is shown as is."""


def expected_for(spec: dict, dataset_version: DatasetVersion) -> dict[str, list[int]]:
    return expected_shapes(
        spec, input_shape=tuple(dataset_version.sample_shape), num_classes=len(dataset_version.class_names)
    )


def read_pytorch_state_dict(path) -> dict[str, torch.Tensor]:
    """A plain state dict from a torch.save file, or `WeightsRefused`; never runs pickled code."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsRefused(
            "file: refused: it is not a plain PyTorch state dict; torch.load(weights_only=True) would not open it "
            f"({type(error).__name__}). Nothing in the file was run."
        ) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise WeightsRefused("file: the file holds no state dict (a mapping of parameter names to tensors)")
    if loaded and all(key.startswith("module.") for key in loaded):  # saved from DataParallel
        loaded = {key.removeprefix("module."): value for key, value in loaded.items()}
    return loaded


def _read(version: ModelVersion) -> dict:
    path = local_path(version.upload)
    if version.upload_format == "pytorch":
        return read_pytorch_state_dict(path)
    try:
        return load_weights(path)
    except WeightsFileError as error:
        raise WeightsRefused(f"file: {error}") from None


def _check(version: ModelVersion, state: dict) -> None:
    found = {name: list(value.shape) for name, value in state.items()}
    problems = shape_problems(found, expected_for(version.spec, version.trained_on))
    if problems:
        raise WeightsRefused(f"file: the weights do not match the architecture: {'; '.join(problems[:5])}")


def version_import(
    version: ModelVersion,
    *,
    report: Callable[[float, str], None] = lambda fraction, message: None,
    fence: Callable[[], None] = lambda: None,
) -> ModelVersion:
    """Read the upload, check it against the architecture and store it as the version (the import job runs this).

    A version no longer processing was finished by an earlier attempt: nothing to do. `fence`
    runs inside the transaction that stores the result (the job's lease check).
    """
    if version.status != ModelVersion.Status.PROCESSING:
        return version
    state = _read(version)
    report(0.5, "read the weights")
    _check(version, state)
    with scratch_path(".safetensors") as out:
        size = save_weights(out, state)
        _store_imported(version, out, size, parameter_counts(state), fence)
    delete_stored(version.upload)
    version.refresh_from_db()
    return version


def _store_imported(version: ModelVersion, out, size: int, counts: tuple[int, int], fence) -> None:
    """Store the file first, then lock the quota, check and record: no lock is held across file I/O."""
    team = version.model.team
    digest = file_sha256(out)
    name = store_file(out, f"models/{team.pk}/{version.model_id}/v{version.number}-{uuid.uuid4().hex[:8]}.safetensors")
    try:
        with transaction.atomic():
            fence()
            check_quota(team, storage_bytes=size)
            updated = ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.PROCESSING).update(
                status=ModelVersion.Status.READY,
                finished_at=timezone.now(),
                artifact=name,
                bytes=size,
                sha256=digest,
                parameter_count=counts[0],
                nonzero_parameters=counts[1],
                upload="",
            )
            if not updated:
                raise Conflict(f"{version} was deleted or failed while it was being imported.")
            usage_record(
                team=team, kind=UsageRecord.Kind.STORAGE_BYTES, amount=size, source=f"model_version:{version.pk}"
            )
    except Exception:
        delete_stored(name)
        raise
