"""Ingest becomes a job kind: a version links to the job that ingests it; the old reaper schedule goes."""

from django.db import migrations, models

OLD_SCHEDULE = "datasets: reap stale ingests"


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=OLD_SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [("datasets", "0002_reaper_schedule")]

    operations = [
        migrations.AddField(
            model_name="datasetversion",
            name="produced_by_job",
            field=models.PositiveBigIntegerField(
                blank=True, db_index=True, help_text="Id of the job that made it.", null=True
            ),
        ),
        migrations.RunPython(unschedule, migrations.RunPython.noop),
    ]
