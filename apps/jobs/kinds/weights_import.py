"""The `import` kind: check uploaded weights against their architecture and store them as the version.

Started by the registry (through apps.core.work) when weights are uploaded. A PyTorch file
is opened only here, in a worker, with `torch.load(weights_only=True)`.
"""

from apps.core.errors import NotFound
from apps.core.params import Param, Params
from apps.jobs.kinds import JobFailed, register_kind
from apps.jobs.kinds.references import MODEL, model_version_name
from apps.registry.imports import WeightsRefused, version_import
from apps.registry.models import ModelVersion

IMPORT_PARAMS = Params(MODEL, Param("version", int, low=1, help="The uploaded version's number."))


def validate(spec: dict, *, team, actor) -> dict:
    if not ModelVersion.objects.filter(
        model_id=spec["model"], model__team=team, number=spec["version"], status=ModelVersion.Status.PROCESSING
    ).exists():
        raise NotFound("spec.version: no such uploaded version waiting to be imported.", fields={"spec.version": []})
    return spec


def run(context) -> dict:
    spec = context.job.spec
    version = ModelVersion.objects.select_related("model__team", "trained_on").get(
        model_id=spec["model"], number=spec["version"]
    )
    context.log(f"importing {version} from an uploaded {version.upload_format} file")
    try:
        version = version_import(version, report=context.progress, fence=context.fence)
    except WeightsRefused as error:
        raise JobFailed(error.message) from None
    context.log(f"stored {version.parameter_count:,} parameters in {version.bytes:,} bytes")
    return {"model": spec["model"], "version": spec["version"]}


def describe(spec: dict) -> str:
    return model_version_name(spec["model"], spec["version"])


def register() -> None:
    register_kind(
        "import",
        params=IMPORT_PARAMS,
        validate=validate,
        run=run,
        describe=describe,
        started_by="upload weights (POST /api/v1/models/<id>/versions/)",
    )
