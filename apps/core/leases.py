"""Attempt fencing for background work kept in a row (`LeasedWork`).

A dispatcher bumps `attempts` and queues a task carrying that number. The task claims
the attempt with a conditional update, and every later write is conditional on the
row still being at that attempt. When a worker dies the reaper dispatches the next
attempt, after which the dead (or merely slow) worker's late writes match no row and
are dropped: at most one attempt's results ever land, and nothing stays "running".
"""

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from django.db.models import F, Model, Q, QuerySet
from django.utils import timezone

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """This attempt no longer owns the row (a newer attempt took it, or it was finished)."""


def lease_dispatch(model: type[Model], pk, *, from_attempt: int, active: Q) -> int | None:
    """Move an active row from attempt `from_attempt` to the next one; None if it moved on already."""
    updated = model.objects.filter(active, pk=pk, attempts=from_attempt).update(
        attempts=F("attempts") + 1, claimed_at=None, heartbeat_at=timezone.now()
    )
    return from_attempt + 1 if updated else None


def lease_claim(model: type[Model], pk, *, attempt: int, active: Q, **fields) -> bool:
    """Take `attempt` for this worker. False: another worker has it, or it is stale or done."""
    now = timezone.now()
    return bool(
        model.objects.filter(active, pk=pk, attempts=attempt, claimed_at__isnull=True).update(
            claimed_at=now, heartbeat_at=now, **fields
        )
    )


def lease_write(model: type[Model], pk, *, attempt: int, active: Q, **fields) -> None:
    """Write `fields` (and a heartbeat) only while `attempt` still owns the row."""
    updated = model.objects.filter(active, pk=pk, attempts=attempt).update(heartbeat_at=timezone.now(), **fields)
    if not updated:
        raise LeaseLost(f"{model.__name__} {pk}: attempt {attempt} no longer owns the row")


def stale_leases(queryset: QuerySet, *, older_than_seconds: float) -> QuerySet:
    """Active rows whose current attempt has not shown a sign of life for too long."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return queryset.filter(heartbeat_at__lt=cutoff)


class ProgressReporter:
    """Writes progress at most every `interval` seconds (and always at 100%) under the lease."""

    def __init__(self, write: Callable[[float, str], None], *, interval: float = 1.0):
        self._write = write
        self._interval = interval
        self._last = 0.0

    def __call__(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < self._interval:
            return
        self._last = now
        self._write(max(0.0, min(1.0, fraction)), message)


class LeasedRunner:
    """Runs `BackgroundWork` rows through their lease: dispatch, claim, progress, finish, reap.

    One runner per kind of work (`LeasedRunner(DatasetVersion, "apps.datasets.tasks.ingest_version")`).
    The work function does the job and calls `complete(...)`; the runner turns errors
    into a failed row: the message of an expected error as is, anything else as an
    internal error (logged with its traceback), and a lost lease into nothing at all.
    """

    def __init__(
        self,
        model,
        task: str,
        *,
        expected_errors: tuple[type[Exception], ...],
        on_fail=None,
        fields_on_fail: dict | None = None,
    ):
        self.model = model
        self.task = task
        self.expected_errors = expected_errors
        self.on_fail = on_fail or (lambda row: None)  # e.g. delete files only this row knew about
        self.fields_on_fail = fields_on_fail or {}

    def dispatch(self, row, attempt: int = 1) -> None:
        """Queue `attempt` of a row whose `attempts` is that number (once the transaction commits)."""
        from apps.core.queue import enqueue_on_commit

        enqueue_on_commit(self.task, row.pk, attempt, group=self.model._meta.model_name)

    def run(self, pk, attempt: int, work) -> None:
        """Claim `attempt` and run `work(row, report)`; a stale or duplicate attempt does nothing."""
        if not lease_claim(self.model, pk, attempt=attempt, active=self.model.ACTIVE):
            logger.info("%s %s: attempt %s is not ours to run", self.model.__name__, pk, attempt)
            return
        row = self.model.objects.get(pk=pk)
        report = ProgressReporter(
            lambda fraction, message: self.write(pk, attempt, progress=fraction, progress_message=message[:200])
        )
        try:
            work(row, report)
        except LeaseLost:
            logger.warning("%s %s: attempt %s lost its lease to a newer one", self.model.__name__, pk, attempt)
        except self.expected_errors as error:
            self.fail(row, attempt, str(getattr(error, "message", error)))
        except Exception as error:
            logger.exception("%s %s: attempt %s crashed", self.model.__name__, pk, attempt)
            self.fail(row, attempt, f"internal error ({type(error).__name__}); see the server log")

    def write(self, pk, attempt: int, **fields) -> None:
        lease_write(self.model, pk, attempt=attempt, active=self.model.ACTIVE, **fields)

    def complete(self, pk, attempt: int, **fields) -> None:
        """Mark the row ready with `fields` (raises LeaseLost if this attempt no longer owns it)."""
        self.write(
            pk, attempt, status="ready", progress=1.0, progress_message="ready", finished_at=timezone.now(), **fields
        )

    def fail(self, row, attempt: int, message: str, **fields) -> bool:
        try:
            fields = {**self.fields_on_fail, **fields}
            self.write(row.pk, attempt, status="failed", error=message, finished_at=timezone.now(), **fields)
        except LeaseLost:
            return False
        self.on_fail(row)
        return True

    def reap(
        self,
        *,
        stale_seconds: float,
        max_attempts: int,
        can_retry=lambda row: True,
        dispatch_timeout: float | None = None,
    ) -> int:
        """Deal with rows whose attempt shows no sign of life.

        Claimed but silent for `stale_seconds`: the worker died; dispatch the next attempt, or
        fail the row after `max_attempts`. Never claimed for `dispatch_timeout`: the task may
        be waiting behind busy workers or lost with a broker restart; queue the same attempt
        again (a duplicate is harmless: only one claim can win) and never count the wait.
        """
        from django.conf import settings

        from apps.core.queue import enqueue_on_commit

        active = self.model.objects.filter(self.model.ACTIVE)
        handled = 0
        for row in stale_leases(active.filter(claimed_at__isnull=False), older_than_seconds=stale_seconds):
            if row.attempts < max_attempts and can_retry(row):
                attempt = lease_dispatch(self.model, row.pk, from_attempt=row.attempts, active=self.model.ACTIVE)
                if attempt is not None:
                    enqueue_on_commit(self.task, row.pk, attempt, group=self.model._meta.model_name)
                    handled += 1
            elif self.fail(row, row.attempts, f"stopped: no worker finished it after {row.attempts} attempt(s)"):
                handled += 1
        waiting = dispatch_timeout if dispatch_timeout is not None else settings.LEPTON_DISPATCH_TIMEOUT_SECONDS
        for row in stale_leases(active.filter(claimed_at__isnull=True), older_than_seconds=waiting):
            refreshed = self.model.objects.filter(pk=row.pk, attempts=row.attempts, claimed_at__isnull=True).update(
                heartbeat_at=timezone.now()
            )
            if refreshed:
                enqueue_on_commit(self.task, row.pk, row.attempts, group=self.model._meta.model_name)
                handled += 1
        return handled
