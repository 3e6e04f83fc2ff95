"""The three starting plans; operators edit them (or add more) in the admin."""

from django.db import migrations

GIB = 1024**3

PLANS = [
    {
        "slug": "free-trial",
        "name": "Free trial",
        "description": "For trying Lepton: one GPU at a time and a little storage.",
        "is_default": True,
        "max_concurrent_gpus": 1,
        "max_running_jobs": 2,
        "gpu_hours_per_month": 20,
        "storage_bytes": 5 * GIB,
    },
    {
        "slug": "team",
        "name": "Team",
        "description": "For a working ML team.",
        "is_default": False,
        "max_concurrent_gpus": 8,
        "max_running_jobs": 16,
        "gpu_hours_per_month": 1000,
        "storage_bytes": 500 * GIB,
    },
    {
        "slug": "enterprise",
        "name": "Enterprise",
        "description": "For large groups sharing a cluster.",
        "is_default": False,
        "max_concurrent_gpus": 64,
        "max_running_jobs": 128,
        "gpu_hours_per_month": 20000,
        "storage_bytes": 10 * 1024 * GIB,
    },
]


def create_plans(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    for plan in PLANS:
        Plan.objects.update_or_create(slug=plan["slug"], defaults=plan)


def remove_plans(apps, schema_editor):
    apps.get_model("accounts", "Plan").objects.filter(slug__in=[p["slug"] for p in PLANS]).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_plans, remove_plans)]
