"""Versions, evaluations and exports keep only their result: the rest lives on the job that made them."""

from django.db import migrations

LEASE_FIELDS = ("attempts", "claimed_at", "heartbeat_at", "progress", "progress_message")


class Migration(migrations.Migration):
    dependencies = [("registry", "0003_work_produced_by_job"), ("jobs", "0004_work_rows_become_jobs")]

    operations = [
        migrations.RemoveField(model_name=model, name=name)
        for model in ("evaluation", "modelexport", "modelversion")
        for name in LEASE_FIELDS
    ]
