"""Compression experiments: a base version, an accuracy target, and the trials that search for a smaller model."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.accounts.models import Team
from apps.datasets.models import DatasetVersion
from apps.registry.models import ModelVersion


class Objective(models.TextChoices):
    SIZE = "size", "Smallest artifact"
    LATENCY = "latency", "Lowest latency"


class Strategy(models.TextChoices):
    GRID = "grid", "Grid (every listed recipe)"
    AUTO = "auto", "Auto (accuracy-aware search)"


class ExperimentStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Experiment(models.Model):
    """Searches for the smallest (or fastest) compressed version of `base_version` within the accuracy target.

    The target is an allowed drop in accuracy points from the base version's own accuracy,
    measured by the baseline trial on the evaluation dataset version's test split.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    # An experiment is about its base model: deleting the model deletes its experiments.
    base_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="experiments")
    train_dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="+")
    eval_dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="+")
    max_accuracy_drop = models.FloatField(help_text="Allowed accuracy drop, in points (1.0 = one percentage point).")
    objective = models.CharField(max_length=10, choices=Objective.choices, default=Objective.SIZE)
    strategy = models.CharField(max_length=10, choices=Strategy.choices, default=Strategy.AUTO)
    budget = models.PositiveIntegerField(help_text="The most trials to run (the baseline is not counted).")
    recipes = models.JSONField(default=list, blank=True, help_text="Grid: the recipes to try.")
    finetune_epochs = models.PositiveIntegerField(default=3)
    learning_rate = models.FloatField(default=5e-4)
    seed = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=ExperimentStatus.choices, default=ExperimentStatus.RUNNING, db_index=True
    )
    status_reason = models.TextField(blank=True)
    recommended = models.ForeignKey(
        "Trial", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", help_text="Best within target."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="experiment_name_unique_per_team")]

    def __str__(self):
        return self.name


class TrialStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Trial(models.Model):
    """One recipe tried: its job, the version it made, and that version's measurements.

    The figures are copied from the registry's evaluation of the stored artifact (the
    evaluation is linked), so lists sort and chart without a query per trial.
    The baseline trial (an empty recipe) measures the base version itself.
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="trials")
    number = models.PositiveIntegerField(help_text="0 is the baseline.")
    recipe = models.JSONField(default=list, blank=True)
    recipe_key = models.CharField(max_length=64, help_text="sha256 of the recipe as canonical JSON (one trial each).")
    label = models.CharField(max_length=200, blank=True)
    family = models.CharField(max_length=30, help_text="baseline, quantize, prune, ..., or pipeline")
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=TrialStatus.choices, default=TrialStatus.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    version = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="trials")
    evaluation = models.ForeignKey(
        "registry.Evaluation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accuracy = models.FloatField(null=True, blank=True)
    artifact_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    parameter_count = models.PositiveBigIntegerField(null=True, blank=True)
    nonzero_parameters = models.PositiveBigIntegerField(null=True, blank=True)
    flops_per_sample = models.PositiveBigIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    within_target = models.BooleanField(null=True, blank=True)
    on_size_frontier = models.BooleanField(default=False)
    on_latency_frontier = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["experiment", "number"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "number"], name="trial_number_unique"),
            models.UniqueConstraint(fields=["experiment", "recipe_key"], name="trial_recipe_unique"),
        ]

    def __str__(self):
        return f"trial {self.number} of {self.experiment}"

    @property
    def is_baseline(self) -> bool:
        return self.number == 0

    @property
    def finished(self) -> bool:
        return self.status in (TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.CANCELLED)
