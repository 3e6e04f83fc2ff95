"""Give every team that has no quota row one on the default plan (teams now get it on creation)."""

from django.db import migrations


def add_missing_quotas(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    Team = apps.get_model("accounts", "Team")
    TeamQuota = apps.get_model("accounts", "TeamQuota")
    plan = Plan.objects.filter(is_default=True).first()
    if plan is None:
        return  # no default plan to put them on: quotas.team_quota makes the row once an operator marks one
    missing = Team.objects.filter(quota__isnull=True)
    TeamQuota.objects.bulk_create([TeamQuota(team=team, plan=plan) for team in missing])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_membership_invitations")]

    operations = [migrations.RunPython(add_missing_quotas, migrations.RunPython.noop)]
