"""Team-scoped reads of jobs, their epochs and logs, and the training-curve chart."""

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.urls import reverse

from apps.accounts.selectors import get_scoped_or_404, scope_to_teams
from apps.core.charts import LAYOUT, figure_json
from apps.core.work import WorkState
from apps.jobs.models import Job, JobEpoch, JobLogLine, JobStatus

LOG_PAGE = 500


def jobs_for_user(user) -> QuerySet[Job]:
    return (
        scope_to_teams(Job.objects.all(), user)
        .select_related("team", "submitted_by", "node")
        .order_by("-created_at", "-pk")
    )


def team_jobs(user, team) -> QuerySet[Job]:
    """`jobs_for_user` narrowed to the current team; none when there is no current team."""
    jobs = jobs_for_user(user)
    return jobs.filter(team=team) if team is not None else jobs.none()


def team_active_jobs(user, team, *, rows: int = 10) -> tuple[list[Job], list[Job]]:
    """(running, queued): the team's first `rows` jobs holding a slot (or about to), and those waiting.

    Scheduled jobs count as running: their slot and GPUs are already taken.
    """
    jobs = team_jobs(user, team)
    running = list(jobs.filter(status__in=(JobStatus.SCHEDULED, JobStatus.RUNNING))[:rows])
    queued = list(jobs.filter(status=JobStatus.QUEUED)[:rows])
    return running, queued


def job_for_user(user, pk) -> Job:
    return get_scoped_or_404(Job.objects.select_related("team", "submitted_by", "node"), user, pk=pk)


def job_rank_nodes(job: Job) -> list[str]:
    """The nodes of a multi-node job's current (or last) attempt, by rank; empty for a one-node job."""
    if job.nodes <= 1:
        return []
    return list(job.ranks.order_by("rank").values_list("node__name", flat=True))


def job_epochs(job: Job) -> QuerySet[JobEpoch]:
    return job.epochs.order_by("epoch")


def job_log_after(job: Job, after: int = 0, limit: int = LOG_PAGE) -> list[JobLogLine]:
    """Log lines with an id above `after` (a client tails by passing the last id it saw)."""
    return list(job.log_lines.filter(pk__gt=after).order_by("pk")[:limit])


def job_log_tail(job: Job, lines: int = 50) -> list[JobLogLine]:
    return list(reversed(job.log_lines.order_by("-pk")[:lines]))


def training_curves(epochs: list[JobEpoch]) -> dict:
    """Loss (left axis) and accuracy (right axis) per epoch, growing as epochs finish."""
    import plotly.graph_objects as go

    x = [e.epoch for e in epochs]
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=x, y=[e.train_loss for e in epochs], name="train loss", mode="lines+markers"))
    figure.add_trace(go.Scatter(x=x, y=[e.val_loss for e in epochs], name="val loss", mode="lines+markers"))
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[e.val_accuracy for e in epochs],
            name="val accuracy",
            mode="lines+markers",
            yaxis="y2",
            line={"dash": "dot"},
        )
    )
    figure.update_layout(
        **LAYOUT,
        title="Training curves",
        xaxis_title="epoch",
        yaxis_title="loss",
        yaxis2={"title": "accuracy", "overlaying": "y", "side": "right", "range": [0, 1]},
        legend={"orientation": "h", "y": -0.25},
        uirevision="curves",
    )
    return figure_json(figure)


def work_states(job_ids: list[int]) -> dict[int, WorkState]:
    """What `apps.core.work.states` answers: each job's state, for the rows it makes (one query)."""
    jobs = Job.objects.filter(pk__in=job_ids).select_related("node")
    return {job.pk: job_state(job) for job in jobs}


def job_state(job: Job) -> WorkState:
    return WorkState(
        job_id=job.pk,
        kind=job.kind,
        status=job.status,
        status_reason=job.status_reason,
        progress=job.progress,
        step=job.progress_step,
        node=job.node.name if job.node_id else None,
        attempts=job.attempts,
        started_at=job.started_at,
        finished_at=job.finished_at,
        duration_seconds=job.duration_seconds,
        url=reverse("jobs:detail", args=[job.pk]),
    )


def job_result_link(job: Job) -> tuple[str, str] | None:
    """What the job made, as (words, page URL): the model version or dataset version it stored or measured."""
    result = job.result or {}
    if result.get("model") and result.get("version"):
        words = {"evaluate": "measured", "export": "exported"}.get(job.kind, "model version")
        return f"{words} v{result['version']}", reverse("registry:version", args=[result["model"], result["version"]])
    if result.get("dataset") and result.get("version"):
        url = reverse("datasets:detail", args=[result["dataset"]]) + f"?version={result['version']}"
        return f"dataset version v{result['version']}", url
    return None


# --- why a queued job waits ------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """Where a queued job stands: its place in its team's queue and in the cluster's, what holds it,
    and when it could start judging by the ETAs of the jobs running where it could run."""

    team_position: int  # 1: next of its team
    team_queued: int
    cluster_position: int  # about: the fair order takes each team's jobs in turn
    cluster_queued: int
    held_by: str  # quota, pool, free GPUs... (the last placement pass's reason)
    estimated_start_seconds: float | None  # None: no running job says when it ends
    estimate_basis: str


def job_waiting(job: Job) -> Waiting | None:
    """Why `job` waits (None unless it is queued), in four queries whatever the queue's depth."""
    if job.status != JobStatus.QUEUED:
        return None
    queued = Job.objects.filter(status=JobStatus.QUEUED, cancel_requested_at__isnull=True)
    ahead = Q(priority__gt=job.priority) | Q(priority=job.priority, created_at__lt=job.created_at)
    ahead |= Q(priority=job.priority, created_at=job.created_at, pk__lt=job.pk)
    position = queued.filter(ahead, team_id=job.team_id).count() + 1
    per_team = dict(queued.values_list("team_id").annotate(n=Count("pk")).order_by())
    # Round-robin across teams: before its turn, every other team gets about as many turns.
    others = sum(min(n, position - 1) for team, n in per_team.items() if team != job.team_id)
    held_by = job.status_reason
    if held_by == "waiting to be placed" and position > 1:  # not looked at yet: its team's first job says why
        first = queued.filter(team_id=job.team_id).order_by("-priority", "created_at", "pk").first()
        held_by = f"{position - 1} earlier job(s) of its team go first; the first waits for: {first.status_reason}"
    held_by = held_by.replace("waiting: ", "")
    quota_bound = "team quota" in held_by
    estimate, basis = _start_estimate(job, position if quota_bound else position + others, quota_bound)
    return Waiting(
        team_position=position,
        team_queued=per_team.get(job.team_id, 0),
        cluster_position=position + others,
        cluster_queued=sum(per_team.values()),
        held_by=held_by,
        estimated_start_seconds=estimate,
        estimate_basis=basis,
    )


def _start_estimate(job: Job, place: int, quota_bound: bool) -> tuple[float | None, str]:
    """When enough GPUs (or slots) free up for this job and the `place - 1` jobs ahead of it.

    Each running job frees its GPUs (or its slot) at its ETA; the jobs ahead take the first
    ones. Only jobs where this one could run count: its team's when its quota holds it, else
    those on nodes of its pool.
    """
    holding = Job.objects.filter(status__in=(JobStatus.SCHEDULED, JobStatus.RUNNING))
    if quota_bound:
        holding, basis = holding.filter(team_id=job.team_id), "its team's running jobs"
    else:
        basis = "the running jobs' ETAs"
        if job.pool:
            holding, basis = holding.filter(node__pool=job.pool), f"the ETAs of the jobs running in pool {job.pool}"
    need = place * max(job.gpus, 1)
    freed = 0
    ends = sorted(holding.filter(eta_seconds__isnull=False).values_list("eta_seconds", "gpus"))
    for eta, gpus in ends:
        freed += max(gpus, 1) if job.gpus else 1
        if freed >= need:
            return eta, basis
    return None, "no running job it waits for reports an ETA yet"
