"""The port through which datasets and the registry ask for background work without knowing who runs it.

Ingesting a dataset version, importing uploaded weights, evaluating and exporting a model
version are job kinds: the scheduler places them on a node, they count against its worker
slots and the team's quota, and the Jobs page shows them with their node, duration and log.
But the jobs app sits above datasets and the registry (it imports them, not the other way
round), so those apps ask for work here, inside their own transaction:

    job_id = work.request("ingest", actor=user, team=team, spec={"dataset": 3, "version": 2})

and keep only the result and `produced_by_job` on their row. The jobs app fills the port in
when it starts (`provide`). Two signals travel back, both sent inside the transaction that
changes the job, so a row and its job never disagree for long:

- `work_ended(job_id, succeeded, reason)`: the job is over; rows it left processing fail with
  the reason (nothing stays "processing" after its job has ended, however it ended);
- `work_retrying(job_id)`: a finished job is queued again; its rows go back to processing, or a
  receiver raises `Conflict` to refuse (an upload deleted when the job failed cannot be re-read).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.dispatch import Signal

work_ended = Signal()  # job_id, succeeded, reason
work_retrying = Signal()  # job_id


@dataclass(frozen=True)
class WorkState:
    """What a row's page or API shows of the job that makes it."""

    job_id: int
    kind: str
    status: str
    status_reason: str
    progress: float
    step: str
    node: str | None
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    url: str

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class WorkBackend:
    request: Callable[..., int]  # (kind, *, actor, team, spec, gpus) -> job id
    states: Callable[[list[int]], dict[int, WorkState]]


_backend: WorkBackend | None = None


def provide(backend: WorkBackend) -> None:
    """Called once by the app that runs work (jobs), from its `ready()`."""
    global _backend
    _backend = backend


def _provided() -> WorkBackend:
    if _backend is None:
        raise RuntimeError("no app provides background work (is apps.jobs installed?)")
    return _backend


def request(kind: str, *, actor, team, spec: dict, gpus: int = 0) -> int:
    """Ask for one piece of work (placed once the caller's transaction commits); returns its job's id."""
    return _provided().request(kind, actor=actor, team=team, spec=spec, gpus=gpus)


def states(job_ids: Iterable[int | None]) -> dict[int, WorkState]:
    """The state of each job (one query for all of them); ids of no job are left out."""
    wanted = sorted({job_id for job_id in job_ids if job_id})
    return _provided().states(wanted) if wanted else {}


def state(job_id: int | None) -> WorkState | None:
    return states([job_id]).get(job_id) if job_id else None


def attach_states(rows: Iterable) -> list:
    """Set `row.work` (a WorkState or None) on rows with a `produced_by_job`, in one query."""
    rows = list(rows)
    found = states(row.produced_by_job for row in rows)
    for row in rows:
        row.work = found.get(row.produced_by_job)
    return rows


def work_of(row) -> WorkState | None:
    """`row.work`, looked up now if nobody attached it (a single row)."""
    if not hasattr(row, "work"):
        row.work = state(row.produced_by_job)
    return row.work
