"""Team-scoped reads of deployments and keys, with the version each one serves now."""

from datetime import timedelta

from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.accounts.selectors import get_scoped_or_404, scope_to_teams
from apps.deployments import stats
from apps.deployments.models import Deployment, DeploymentKey
from apps.registry.models import Alias, Model, ModelVersion

STATS_WINDOW = timedelta(hours=24)


def _with_serving_version(deployments: QuerySet[Deployment]) -> QuerySet[Deployment]:
    """Annotate `serving_number`: the pinned version's number, or where the alias points now."""
    aliased = Alias.objects.filter(model=OuterRef("model"), name=OuterRef("alias")).values("version__number")[:1]
    return deployments.annotate(serving_number=Coalesce(F("version__number"), Subquery(aliased)))


def deployments_for_user(user) -> QuerySet[Deployment]:
    return _with_serving_version(
        scope_to_teams(Deployment.objects.all(), user).select_related("team", "model", "version", "created_by")
    ).order_by("name", "pk")


def team_deployments(user, team) -> QuerySet[Deployment]:
    """`deployments_for_user` narrowed to the current team; none when there is no current team."""
    deployments = deployments_for_user(user)
    return deployments.filter(team=team) if team is not None else deployments.none()


def deployment_for_user(user, pk) -> Deployment:
    return get_scoped_or_404(
        _with_serving_version(Deployment.objects.select_related("team", "model", "version", "created_by")),
        user,
        pk=pk,
    )


def deployment_to_serve(user, pk) -> Deployment:
    """The deployment a predict request names (the lean query of the hot path: no annotations)."""
    return get_scoped_or_404(Deployment.objects.select_related("version"), user, pk=pk)


def deployment_keys(deployment: Deployment) -> QuerySet[DeploymentKey]:
    return deployment.keys.select_related("created_by").order_by("-created_at", "-pk")


def key_for_user(user, deployment_pk, pk) -> DeploymentKey:
    return get_scoped_or_404(
        DeploymentKey.objects.select_related("deployment__team", "created_by"),
        user,
        via="deployment__team",
        deployment_id=deployment_pk,
        pk=pk,
    )


def deployment_targets(team, model: Model | None = None) -> tuple[list[ModelVersion], list[Alias]]:
    """What a deployment can serve: the ready versions and the aliases of the team's models, or of one model."""
    where = {"model": model} if model else {"model__team": team}
    versions = (
        ModelVersion.objects.filter(**where, status=ModelVersion.Status.READY)
        .select_related("model")
        .order_by("model__name", "-number")
    )
    aliases = Alias.objects.filter(**where).select_related("model", "version").order_by("model__name", "name")
    return list(versions), list(aliases)


def serving_version_or_none(deployment: Deployment) -> ModelVersion | None:
    """The version the deployment answers with now (where its alias points), or None if the alias is unset.

    The page's read; `services.serving_version` is the predict path's, which refuses instead.
    """
    if not deployment.alias:
        return deployment.version
    alias = Alias.objects.filter(model_id=deployment.model_id, name=deployment.alias).select_related("version").first()
    return alias.version if alias else None


def recent_totals(deployments: list[Deployment]) -> dict[int, stats.Summary]:
    """Requests, errors and latency percentiles of the last 24 hours per deployment (one query)."""
    return stats.totals([d.pk for d in deployments], since=timezone.now() - STATS_WINDOW)


def attach_recent_totals(deployments: list[Deployment]) -> list[Deployment]:
    """Set `.recent` (a stats.Summary) on each deployment; one query for the whole list."""
    totals = recent_totals(deployments)
    for deployment in deployments:
        deployment.recent = totals[deployment.pk]
    return deployments
