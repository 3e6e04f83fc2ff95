"""Imports, evaluations and exports become job kinds: their rows link to the job that makes them."""

from django.db import migrations, models

OLD_SCHEDULE = "registry: reap stale work"


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=OLD_SCHEDULE).delete()


def _job_link():
    return models.PositiveBigIntegerField(blank=True, db_index=True, help_text="Id of the job that made it.", null=True)


class Migration(migrations.Migration):
    dependencies = [("registry", "0002_reaper_schedule")]

    operations = [
        migrations.AddField(model_name="evaluation", name="produced_by_job", field=_job_link()),
        migrations.AddField(model_name="modelexport", name="produced_by_job", field=_job_link()),
        migrations.AlterField(model_name="modelversion", name="produced_by_job", field=_job_link()),
        migrations.RunPython(unschedule, migrations.RunPython.noop),
    ]
