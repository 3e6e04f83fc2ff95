"""Rows every team has from the moment it exists, however it was created."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from apps.accounts.models import Plan, Team
from apps.accounts.plans import quota_ensure


@receiver(post_save, sender=Team, dispatch_uid="accounts.team_quota_on_create")
def team_quota_on_create(sender, instance: Team, created: bool, raw: bool = False, **kwargs) -> None:
    """Give a new team its quota row on the default plan (a team from the admin or a shell too).

    Skipped for fixture loads (`raw`) and while no plan is marked default (before the plans
    migration): quotas.team_quota makes the row on first use then.
    """
    if created and not raw and Plan.objects.filter(is_default=True).exists():
        quota_ensure(instance)
