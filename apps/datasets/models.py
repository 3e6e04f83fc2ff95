"""Datasets and their immutable versions."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.accounts.models import Team
from apps.core.models import WorkResult


class Task(models.TextChoices):
    IMAGE_CLASSIFICATION = "image_classification", "Image classification"
    TABULAR_CLASSIFICATION = "tabular_classification", "Tabular classification"


class Dataset(models.Model):
    """A named collection of versions in a team. Every upload adds a version."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    task = models.CharField(max_length=30, choices=Task.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="dataset_name_unique_in_team")]

    def __str__(self):
        return self.name


class SourceFormat(models.TextChoices):
    CSV = "csv", "CSV"
    NPZ = "npz", "NPZ (X, y)"
    IMAGE_ZIP = "image_zip", "Image folder (zip)"
    BUNDLED = "bundled", "Bundled"


class DatasetVersion(WorkResult):
    """One immutable version: its tensor file and what ingest learned about it.

    Created `processing` with its ingest job (`produced_by_job`); the job fills in the rest
    once and marks it `ready`, or it ends `failed` with the job's reason (and then stores
    nothing else). Never edited afterwards.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    source_format = models.CharField(max_length=20, choices=SourceFormat.choices)
    source_name = models.CharField(max_length=255, help_text="Uploaded file name, or the bundled set's name.")
    source_options = models.JSONField(default=dict, blank=True)
    upload = models.CharField(max_length=255, blank=True, help_text="The raw upload in storage, until ingested.")
    upload_bytes = models.PositiveBigIntegerField(default=0)
    artifact = models.CharField(max_length=255, blank=True)
    preview_image = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    bytes = models.PositiveBigIntegerField(default=0)
    sample_count = models.PositiveIntegerField(default=0)
    sample_shape = models.JSONField(default=list, blank=True, help_text="(features,) or (channels, height, width)")
    feature_names = models.JSONField(default=list, blank=True)
    class_names = models.JSONField(default=list, blank=True)
    class_counts = models.JSONField(default=list, blank=True)
    split_seed = models.PositiveIntegerField(default=0)
    split_counts = models.JSONField(default=dict, blank=True)
    preprocessing = models.JSONField(default=dict, blank=True)
    preview = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_number_unique")]

    def __str__(self):
        return f"{self.dataset.name} v{self.number}"
