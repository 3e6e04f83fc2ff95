"""The `export` kind: a version in ONNX, checked against torch by running it in onnxruntime.

Started by the registry (through apps.core.work) when an export is requested.
"""

from apps.core.errors import NotFound
from apps.core.params import Param, Params
from apps.jobs.kinds import JobFailed, register_kind
from apps.jobs.kinds.references import MODEL, model_version_name
from apps.registry.exports import export_run
from apps.registry.models import ModelExport
from apps.registry.onnx_export import OnnxMismatch

EXPORT_PARAMS = Params(
    MODEL,
    Param("version", int, low=1, help="The version number to export."),
    Param("format", str, ModelExport.Format.ONNX.value, choices=tuple(ModelExport.Format.values)),
)


def validate(spec: dict, *, team, actor) -> dict:
    if not ModelExport.objects.filter(
        version__model_id=spec["model"],
        version__model__team=team,
        version__number=spec["version"],
        format=spec["format"],
        status=ModelExport.Status.PROCESSING,
    ).exists():
        raise NotFound("spec.version: no such export waiting to be made.", fields={"spec.version": []})
    return spec


def run(context) -> dict:
    spec = context.job.spec
    export = ModelExport.objects.select_related("version__model__team").get(
        version__model_id=spec["model"], version__number=spec["version"], format=spec["format"]
    )
    context.log(f"exporting {export.version} to {export.get_format_display()}")
    try:
        export = export_run(export, report=context.progress, fence=context.fence)
    except OnnxMismatch as error:
        raise JobFailed(str(error)) from None
    context.log(f"{export.bytes:,} bytes; largest difference from torch {export.max_abs_diff:.3g}")
    return {"model": spec["model"], "version": spec["version"], "format": spec["format"]}


def describe(spec: dict) -> str:
    return f"{model_version_name(spec['model'], spec['version'])} to {spec['format']}"


def register() -> None:
    register_kind(
        "export",
        params=EXPORT_PARAMS,
        validate=validate,
        run=run,
        describe=describe,
        started_by="request an export (POST /api/v1/models/<id>/versions/<number>/exports/)",
    )
