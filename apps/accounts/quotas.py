"""Team usage and the quota check every later submission goes through.

Usage has two sources:
- the ledger (`UsageRecord`): GPU-seconds per finished attempt, bytes stored or freed;
- live allocations (GPUs held, jobs running), which the jobs app owns. `accounts`
  imports no other app, so the jobs app registers a function that reports them
  (`register_live_usage_source`); until one is registered nothing is allocated.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from apps.accounts.models import QUOTA_LIMITS, Team, TeamQuota, UsageRecord
from apps.accounts.plans import quota_ensure
from apps.core.errors import QuotaExceeded
from apps.core.units import format_bytes, format_number


@dataclass(frozen=True)
class LiveUsage:
    gpus: int = 0
    running_jobs: int = 0


LiveUsageSource = Callable[[list[int]], dict[int, LiveUsage]]
_live_usage_sources: list[LiveUsageSource] = []


def register_live_usage_source(source: LiveUsageSource) -> None:
    """Called once by the app that owns allocations: team ids -> what they hold now."""
    if source not in _live_usage_sources:
        _live_usage_sources.append(source)


@dataclass(frozen=True)
class TeamUsage:
    """What a team uses now, in the units its limits are written in."""

    gpus: int  # held now, by scheduled and running jobs
    running_jobs: int  # scheduled or running
    gpu_hours: float  # this calendar month
    storage_bytes: int

    def against(self, limit: str) -> float:
        """The usage a quota limit is measured against ("max_running_jobs" -> running_jobs)."""
        return {
            "max_concurrent_gpus": self.gpus,
            "max_running_jobs": self.running_jobs,
            "gpu_hours_per_month": self.gpu_hours,
            "storage_bytes": self.storage_bytes,
        }[limit]


def month_start(now: datetime | None = None) -> datetime:
    """The first instant of the current calendar month in UTC (the GPU-hours window)."""
    now = timezone.now() if now is None else now
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def teams_usage(team_ids: Iterable[int]) -> dict[int, TeamUsage]:
    """Usage of many teams in one ledger query (plus one per live-usage source)."""
    ids = list(team_ids)
    ledger = (
        UsageRecord.objects.filter(team_id__in=ids)
        .values("team_id")
        .annotate(
            storage=Sum("amount", filter=Q(kind=UsageRecord.Kind.STORAGE_BYTES)),
            gpu_seconds=Sum("amount", filter=Q(kind=UsageRecord.Kind.GPU_SECONDS, created_at__gte=month_start())),
        )
    )
    by_team = {row["team_id"]: row for row in ledger}
    live: dict[int, LiveUsage] = {}
    for source in _live_usage_sources:
        for team_id, usage in source(ids).items():
            held = live.get(team_id, LiveUsage())
            live[team_id] = LiveUsage(held.gpus + usage.gpus, held.running_jobs + usage.running_jobs)
    result = {}
    for team_id in ids:
        row = by_team.get(team_id, {})
        held = live.get(team_id, LiveUsage())
        result[team_id] = TeamUsage(
            gpus=held.gpus,
            running_jobs=held.running_jobs,
            gpu_hours=(row.get("gpu_seconds") or 0) / 3600,
            storage_bytes=row.get("storage") or 0,
        )
    return result


def team_usage(team: Team) -> TeamUsage:
    return teams_usage([team.pk])[team.pk]


def team_quota(team: Team) -> TeamQuota:
    """The team's quota row (from `select_related` when loaded); a team without one gets the default plan's.

    Teams get their row when they are created (apps.accounts.signals); this covers a row
    deleted since, so reading a quota never fails with `DoesNotExist`.
    """
    try:
        return team.quota
    except TeamQuota.DoesNotExist:
        team.quota = quota_ensure(team)
        return team.quota


@dataclass(frozen=True)
class QuotaLine:
    """One limit beside its usage, ready to show ("3.2 of 10 GiB")."""

    name: str
    label: str
    used: float
    limit: int

    @property
    def fraction(self) -> float:
        if self.limit == 0:
            return 1.0 if self.used > 0 else 0.0
        return self.used / self.limit

    @property
    def display(self) -> str:
        if self.name == "storage_bytes":
            return f"{format_bytes(self.used)} of {format_bytes(self.limit)}"
        unit = {"max_concurrent_gpus": "GPUs", "max_running_jobs": "jobs", "gpu_hours_per_month": "GPU-hours"}
        return f"{format_number(self.used)} of {self.limit} {unit[self.name]}"


LIMIT_LABELS = {
    "max_concurrent_gpus": "Concurrent GPUs",
    "max_running_jobs": "Running jobs",
    "gpu_hours_per_month": "GPU-hours this month",
    "storage_bytes": "Storage",
}


def quota_lines(quota: TeamQuota, usage: TeamUsage) -> list[QuotaLine]:
    return [QuotaLine(name, LIMIT_LABELS[name], usage.against(name), quota.limit(name)) for name in QUOTA_LIMITS]


def check_quota(
    team: Team, *, gpus: int = 0, jobs: int = 0, gpu_hours: float = 0.0, storage_bytes: int = 0
) -> TeamUsage:
    """Refuse with `QuotaExceeded` if the request would pass any of the team's limits.

    The quota row is locked: call this inside the transaction that records what it
    allows, or two concurrent requests can both pass the check.
    """
    with transaction.atomic():
        quota = _locked_quota(team)
        usage = team_usage(team)
        _refuse_if_over(quota, usage, gpus=gpus, jobs=jobs, gpu_hours=gpu_hours, storage_bytes=storage_bytes)
        return usage


def _locked_quota(team: Team) -> TeamQuota:
    locked = TeamQuota.objects.select_for_update(of=("self",)).select_related("plan")
    try:
        return locked.get(team=team)
    except TeamQuota.DoesNotExist:  # no row: make it on the default plan, then lock it like any other
        quota_ensure(team)
        return locked.get(team=team)


def _refuse_if_over(quota: TeamQuota, usage: TeamUsage, *, gpus, jobs, gpu_hours, storage_bytes) -> None:
    gpu_limit = quota.limit("max_concurrent_gpus")
    if gpus and usage.gpus + gpus > gpu_limit:
        raise QuotaExceeded(
            f"team quota: {usage.gpus} of {gpu_limit} GPUs in use; this needs {gpus} more",
            limit="max_concurrent_gpus",
        )
    job_limit = quota.limit("max_running_jobs")
    if jobs and usage.running_jobs + jobs > job_limit:
        raise QuotaExceeded(f"team quota: {usage.running_jobs} of {job_limit} running jobs", limit="max_running_jobs")
    hours_limit = quota.limit("gpu_hours_per_month")
    hours_used = usage.gpu_hours
    if (gpus or gpu_hours) and (hours_used + gpu_hours > hours_limit or hours_used >= hours_limit):
        raise QuotaExceeded(
            f"team quota: {format_number(hours_used)} of {hours_limit} GPU-hours used this month",
            limit="gpu_hours_per_month",
        )
    storage_limit = quota.limit("storage_bytes")
    if storage_bytes and usage.storage_bytes + storage_bytes > storage_limit:
        raise QuotaExceeded(
            f"team quota: storage {format_bytes(usage.storage_bytes)} of {format_bytes(storage_limit)} used; "
            f"this needs {format_bytes(storage_bytes)} more",
            limit="storage_bytes",
        )


def usage_record(*, team: Team, kind: str, amount: int, source: str) -> bool:
    """Write one ledger line; False (and nothing written) if `source` was recorded before."""
    try:
        with transaction.atomic():
            UsageRecord.objects.create(team=team, kind=kind, amount=amount, source=source)
    except IntegrityError:
        return False
    return True
