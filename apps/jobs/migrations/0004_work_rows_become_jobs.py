"""Ingests, imports, evaluations and exports are jobs now: every existing row gets the job that made it.

A finished row gets a finished job with its times, attempts and outcome, so its page links to
a job like any new one ("ingested by job #12"). A row still processing gets a queued job the
scheduler places as soon as a node is online (its old task is gone). Rows made by train and
compress jobs already name their job.
"""

from django.conf import settings
from django.db import migrations, models

OUTCOME = {"ready": "succeeded", "failed": "failed", "processing": "queued"}


def _job(Job, *, row, team_id, user_id, kind, spec, summary):
    status = OUTCOME[row.status]
    finished = status != "queued"
    return Job(
        team_id=team_id,
        submitted_by_id=user_id,
        kind=kind,
        spec=spec,
        summary=summary[:300],
        status=status,
        status_reason={"succeeded": "done (before background work became jobs)", "queued": "waiting to be placed"}.get(
            status, row.error[:2000]
        ),
        attempts=row.attempts if finished else 0,  # a queued one starts afresh as attempt 1
        max_attempts=(row.attempts if finished else 0) + settings.LEPTON_JOB_MAX_ATTEMPTS,
        progress=1.0 if status == "succeeded" else row.progress,
        progress_step=row.progress_message if finished else "",
        created_at=row.created_at,
        started_at=(row.claimed_at or row.created_at) if finished else None,
        finished_at=row.finished_at if finished else None,
        time_limit_seconds=settings.LEPTON_JOB_TIME_LIMIT_SECONDS,
    )


def _carry(Job, rows, describe) -> None:
    """One job per row (`describe(row)` -> team, user, kind, spec, summary), then the rows link to them."""
    rows = list(rows)
    jobs = Job.objects.bulk_create([_job(Job, row=row, **describe(row)) for row in rows], batch_size=500)
    for row, job in zip(rows, jobs, strict=True):
        row.produced_by_job = job.pk
    if rows:
        type(rows[0]).objects.bulk_update(rows, ["produced_by_job"], batch_size=500)


def carry_over(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    datasets = apps.get_model("datasets", "DatasetVersion").objects.select_related("dataset")
    _carry(
        Job,
        datasets.filter(produced_by_job__isnull=True),
        lambda v: {
            "team_id": v.dataset.team_id,
            "user_id": v.created_by_id,
            "kind": "ingest",
            "spec": {"dataset": v.dataset_id, "version": v.number},
            "summary": f"{v.dataset.name} v{v.number}",
        },
    )
    versions = apps.get_model("registry", "ModelVersion").objects.select_related("model")
    _carry(
        Job,
        versions.filter(produced_by_job__isnull=True, source="upload"),
        lambda v: {
            "team_id": v.model.team_id,
            "user_id": v.created_by_id,
            "kind": "import",
            "spec": {"model": v.model_id, "version": v.number},
            "summary": f"{v.model.name} v{v.number}",
        },
    )
    evaluations = apps.get_model("registry", "Evaluation").objects.select_related(
        "version__model", "dataset_version__dataset"
    )
    _carry(
        Job,
        evaluations.filter(produced_by_job__isnull=True),
        lambda e: {
            "team_id": e.version.model.team_id,
            "user_id": e.requested_by_id,
            "kind": "evaluate",
            "spec": {
                "model": e.version.model_id,
                "version": e.version.number,
                "dataset": e.dataset_version.dataset_id,
                "dataset_version": e.dataset_version.number,
            },
            "summary": f"{e.version.model.name} v{e.version.number} on "
            f"{e.dataset_version.dataset.name} v{e.dataset_version.number}",
        },
    )
    exports = apps.get_model("registry", "ModelExport").objects.select_related("version__model")
    _carry(
        Job,
        exports.filter(produced_by_job__isnull=True),
        lambda x: {
            "team_id": x.version.model.team_id,
            "user_id": x.requested_by_id,
            "kind": "export",
            "spec": {"model": x.version.model_id, "version": x.version.number, "format": x.format},
            "summary": f"{x.version.model.name} v{x.version.number} to {x.format}",
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0003_job_gpu_indexes_job_node_job_time_limit_seconds_and_more"),
        ("datasets", "0003_datasetversion_produced_by_job"),
        ("registry", "0003_work_produced_by_job"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="summary",
            field=models.CharField(
                blank=True, help_text='What it works on, e.g. "iris-mlp v2 on iris v1".', max_length=300
            ),
        ),
        migrations.AlterField(
            model_name="job",
            name="kind",
            field=models.CharField(
                choices=[
                    ("ingest", "Ingest"),
                    ("import", "Import"),
                    ("train", "Train"),
                    ("evaluate", "Evaluate"),
                    ("compress", "Compress"),
                    ("export", "Export"),
                ],
                max_length=20,
            ),
        ),
        migrations.RunPython(carry_over, migrations.RunPython.noop),
    ]
