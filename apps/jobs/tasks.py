"""What the workers run for jobs: one attempt of a job, and the engine's periodic housekeeping."""

from apps.jobs import rank_runner, runner, scheduler, services


def run_job(job_id: int, attempt: int) -> None:
    runner.run_job(job_id, attempt)


def place_queued_jobs() -> int:
    """One coalesced placement pass (queued by scheduler.jobs_request_pass, and every minute)."""
    return scheduler.jobs_pass()


def reap_stale_jobs() -> int:
    return services.jobs_reap_stale()


def run_job_rank(job_id: int, attempt: int, rank: int) -> None:
    rank_runner.run_job_rank(job_id, attempt, rank)
