"""Abstract models shared by apps (core itself owns no tables)."""

from django.db import models


class LeasedWork(models.Model):
    """Fields that fence background work to one attempt at a time (see apps.core.leases).

    `attempts` counts dispatched attempts; the attempt whose number equals `attempts`
    is the only one whose writes count. `claimed_at` is set when a worker takes the
    current attempt; `heartbeat_at` is refreshed while it works (and set on dispatch, so
    a task the broker lost is noticed too).
    """

    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        abstract = True
