"""Every day, forget request statistics past their retention (LEPTON_DEPLOYMENT_STATS_DAYS)."""

from django.db import migrations

NAME = "deployments: prune request statistics"


def schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={
            "func": "apps.deployments.tasks.prune_request_stats",
            "schedule_type": "D",
            "repeats": -1,
            "cluster": "lepton",
        },
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]
    operations = [migrations.RunPython(schedule, unschedule)]
