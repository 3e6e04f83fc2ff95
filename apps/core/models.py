"""Abstract models shared by apps (core itself owns no tables)."""

from django.db import models
from django.db.models import Q


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


class BackgroundWork(LeasedWork):
    """A row that a worker completes once: processing, then ready or failed with a message."""

    class Status(models.TextChoices):
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    ACTIVE = Q(status="processing")

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROCESSING, db_index=True)
    error = models.TextField(blank=True)
    progress = models.FloatField(default=0.0, help_text="0..1")
    progress_message = models.CharField(max_length=200, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
