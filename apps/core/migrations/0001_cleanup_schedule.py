"""Every hour: remove stale temp files and expired job checkpoints (apps.core.cleanup)."""

from django.db import migrations

NAME = "core: cleanup"


def schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={"func": "apps.core.tasks.run_cleanup", "schedule_type": "H", "repeats": -1, "cluster": "lepton"},
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(schedule, unschedule)]
