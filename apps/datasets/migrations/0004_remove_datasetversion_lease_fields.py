"""The version keeps only its result: attempts, heartbeats and progress live on its ingest job."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("datasets", "0003_datasetversion_produced_by_job"), ("jobs", "0004_work_rows_become_jobs")]

    operations = [
        migrations.RemoveField(model_name="datasetversion", name=name)
        for name in ("attempts", "claimed_at", "heartbeat_at", "progress", "progress_message")
    ]
