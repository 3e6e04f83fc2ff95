"""Every minute, re-dispatch (or fail) imports, evaluations and exports whose worker went silent."""

from django.db import migrations

NAME = "registry: reap stale work"


def schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={"func": "apps.registry.tasks.reap_stale_work", "schedule_type": "I", "minutes": 1, "repeats": -1, "cluster": "lepton"},
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]
    operations = [migrations.RunPython(schedule, unschedule)]
