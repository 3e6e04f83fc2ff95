"""Writes to plans and team quotas (what the admin's buttons and actions do)."""

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from apps.accounts.models import QUOTA_LIMITS, Plan, Team, TeamQuota
from apps.core.errors import ApplicationError


def default_plan() -> Plan:
    plan = Plan.objects.filter(is_default=True).first()
    if plan is None:
        raise ApplicationError("No default plan is configured; an operator must mark one plan as default.")
    return plan


@transaction.atomic
def plan_save(plan: Plan) -> Plan:
    """Save a plan; marking it default takes the mark from the previous default."""
    plan.full_clean()
    if plan.is_default:
        Plan.objects.select_for_update().filter(is_default=True).exclude(pk=plan.pk).update(is_default=False)
    plan.save()
    return plan


def quota_ensure(team: Team) -> TeamQuota:
    """The team's quota, created on the default plan if it has none yet."""
    quota = TeamQuota.objects.select_related("plan").filter(team=team).first()
    if quota is not None:
        return quota
    plan = default_plan()
    try:
        with transaction.atomic():
            return TeamQuota.objects.create(team=team, plan=plan)
    except IntegrityError:  # a concurrent request made it between our read and our insert
        return TeamQuota.objects.select_related("plan").get(team=team)


def quota_move_to_plan(quotas: QuerySet[TeamQuota], plan: Plan) -> int:
    """Put teams on `plan` in one step; their per-team overrides stay."""
    return quotas.update(plan=plan)


def quota_clear_overrides(quotas: QuerySet[TeamQuota]) -> int:
    return quotas.update(**dict.fromkeys(QUOTA_LIMITS))
