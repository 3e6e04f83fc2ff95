"""Attempt fencing for background work kept in a row (`LeasedWork`).

A dispatcher bumps `attempts` and queues a task carrying that number. The task claims
the attempt with a conditional update, and every later write is conditional on the
row still being at that attempt. When a worker dies the reaper dispatches the next
attempt, after which the dead (or merely slow) worker's late writes match no row and
are dropped: at most one attempt's results ever land, and nothing stays "running".
"""

import time
from collections.abc import Callable
from datetime import timedelta

from django.db.models import F, Model, Q, QuerySet
from django.utils import timezone


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
