"""Importing uploaded weights (the worker's side): read safely, check, re-save as safetensors.

A PyTorch file is opened only here, in a worker, and only with `torch.load(weights_only=True)`:
a pickle that would run code is refused by torch's restricted unpickler before anything in
it runs. Whatever the upload's format, the stored artifact is Lepton's safetensors layout.
"""

import uuid

import torch
from django.db import transaction

from apps.accounts.models import UsageRecord
from apps.accounts.quotas import check_quota, usage_record
from apps.core.digests import file_sha256
from apps.core.errors import QuotaExceeded
from apps.core.leases import LeasedRunner
from apps.core.storage import delete_stored, local_path, scratch_path, store_file
from apps.datasets.models import DatasetVersion
from apps.registry.measure import parameter_counts
from apps.registry.models import ModelVersion
from apps.registry.rebuild import expected_shapes, shape_problems
from apps.registry.weights import WeightsFileError, load_weights, save_weights

IMPORT_TASK = "apps.registry.tasks.import_version"


class WeightsRefused(Exception):
    """Uploaded weights that cannot become a version; the message is shown as is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _delete_upload(version: ModelVersion) -> None:
    delete_stored(version.upload)


IMPORT = LeasedRunner(
    ModelVersion,
    IMPORT_TASK,
    expected_errors=(WeightsRefused, QuotaExceeded),
    on_fail=_delete_upload,
    fields_on_fail={"upload": ""},
)


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


def version_import(version_id: int, attempt: int) -> None:
    IMPORT.run(version_id, attempt, lambda version, report: _import(version, attempt, report))


def _import(version: ModelVersion, attempt: int, report) -> None:
    state = _read(version)
    report(0.5, "read the weights")
    _check(version, state)
    team = version.model.team
    with scratch_path(".safetensors") as out:
        size = save_weights(out, state)
        digest, (total, nonzero) = file_sha256(out), parameter_counts(state)
        name = f"models/{team.pk}/{version.model_id}/v{version.number}-{uuid.uuid4().hex[:8]}.safetensors"
        stored = []
        try:
            with transaction.atomic():
                check_quota(team, storage_bytes=size)
                stored.append(store_file(out, name))
                IMPORT.complete(
                    version.pk,
                    attempt,
                    artifact=name,
                    bytes=size,
                    sha256=digest,
                    parameter_count=total,
                    nonzero_parameters=nonzero,
                    upload="",
                )
                usage_record(
                    team=team, kind=UsageRecord.Kind.STORAGE_BYTES, amount=size, source=f"model_version:{version.pk}"
                )
        except Exception:
            delete_stored(*stored)
            raise
    _delete_upload(version)
