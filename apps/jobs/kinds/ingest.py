"""The `ingest` kind: check and convert a new dataset version's source into its tensor file.

Started by the datasets app (through apps.core.work) when a version is created, never
submitted on its own. Bad input fails the job at once with the place named (the version
shows the same message); a crash is retried like any job, and an attempt that finds the
version already ready does nothing.
"""

from apps.core.errors import NotFound
from apps.core.params import Param, Params
from apps.datasets.ingest.errors import IngestError
from apps.datasets.models import DatasetVersion
from apps.datasets.services import version_ingest
from apps.jobs.kinds import JobFailed, register_kind
from apps.jobs.kinds.references import dataset_version_name

INGEST_PARAMS = Params(
    Param("dataset", int, low=1, help="The dataset (its id)."),
    Param("version", int, low=1, help="The version number to ingest."),
)


def validate(spec: dict, *, team, actor) -> dict:
    if not DatasetVersion.objects.filter(
        dataset_id=spec["dataset"], dataset__team=team, number=spec["version"], status=DatasetVersion.Status.PROCESSING
    ).exists():
        raise NotFound("spec.version: no such dataset version waiting to be ingested.", fields={"spec.version": []})
    return spec


def run(context) -> dict:
    spec = context.job.spec
    version = DatasetVersion.objects.select_related("dataset__team").get(
        dataset_id=spec["dataset"], number=spec["version"]
    )
    context.log(f"ingesting {version} from {version.get_source_format_display()} '{version.source_name}'")
    try:
        version = version_ingest(version, report=context.progress, fence=context.fence)
    except IngestError as error:
        raise JobFailed(error.message) from None
    context.log(f"{version.sample_count:,} samples of shape {version.sample_shape}, {version.bytes:,} bytes")
    return {"dataset": spec["dataset"], "version": spec["version"]}


def describe(spec: dict) -> str:
    return dataset_version_name(spec["dataset"], spec["version"])


def register() -> None:
    register_kind(
        "ingest",
        params=INGEST_PARAMS,
        validate=validate,
        run=run,
        describe=describe,
        started_by="add a dataset version (POST /api/v1/datasets/<id>/versions/)",
    )
