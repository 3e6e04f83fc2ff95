"""Abstract models shared by apps (core itself owns no tables)."""

from django.db import models


class WorkResult(models.Model):
    """A row that one job fills in once: processing, then ready with its result or failed with why.

    Everything about the work itself (attempts, node, progress, log, duration) lives on the
    job (`produced_by_job`, see apps.core.work); the row keeps only what the work produced.
    """

    class Status(models.TextChoices):
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROCESSING, db_index=True)
    error = models.TextField(blank=True)
    produced_by_job = models.PositiveBigIntegerField(
        null=True, blank=True, db_index=True, help_text="Id of the job that made it."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
