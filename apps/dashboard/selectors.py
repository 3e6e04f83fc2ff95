"""What the dashboard reads of other apps, through those apps' own team-scoped selectors."""

from apps.jobs.models import Job, JobStatus
from apps.jobs.selectors import jobs_for_user

DASHBOARD_ROWS = 10


def team_active_jobs(user, team, *, rows: int = DASHBOARD_ROWS) -> tuple[list[Job], list[Job]]:
    """(running, queued): the team's first `rows` jobs holding GPUs (or about to), and those waiting.

    Scheduled jobs count as running: their GPUs are already taken.
    """
    jobs = jobs_for_user(user).filter(team=team)
    running = list(jobs.filter(status__in=(JobStatus.SCHEDULED, JobStatus.RUNNING))[:rows])
    queued = list(jobs.filter(status=JobStatus.QUEUED)[:rows])
    return running, queued
