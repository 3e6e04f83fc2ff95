"""The model registry: models, immutable versions with lineage, aliases, measurements, exports."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.accounts.models import Team
from apps.core.models import WorkResult
from apps.datasets.models import Dataset, DatasetVersion, Task


class Model(models.Model):
    """A named line of versions in a team, made for one task (and usually one dataset)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=100)
    task = models.CharField(max_length=30, choices=Task.choices)
    description = models.TextField(blank=True)
    architecture = models.JSONField(help_text="The validated architecture spec new versions start from.")
    dataset = models.ForeignKey(Dataset, on_delete=models.SET_NULL, null=True, blank=True, related_name="models")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="model_name_unique_in_team")]

    def __str__(self):
        return self.name


class VersionSource(models.TextChoices):
    UPLOAD = "upload", "Uploaded"
    TRAIN = "train", "Trained"
    COMPRESS = "compress", "Compressed"


class ModelVersion(WorkResult):
    """One immutable version: everything needed to rebuild its module, and its stored weights.

    `spec` + `input_shape` + `num_classes` build the architecture; `transforms` (in order)
    re-apply what changed it (pruning, factorization, quantization); the artifact holds the
    weights. `preprocessing` is what inputs need before the module sees them.
    """

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    label = models.CharField(max_length=100, blank=True, help_text='e.g. "int8" or "pruned 90%"')
    source = models.CharField(max_length=20, choices=VersionSource.choices)
    spec = models.JSONField()
    input_shape = models.JSONField()
    num_classes = models.PositiveIntegerField()
    class_names = models.JSONField(default=list, blank=True)
    preprocessing = models.JSONField(default=dict, blank=True)
    transforms = models.JSONField(default=list, blank=True)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    trained_on = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="model_versions"
    )
    upload = models.CharField(max_length=255, blank=True, help_text="The raw upload, until it is imported.")
    upload_format = models.CharField(max_length=20, blank=True)
    artifact = models.CharField(max_length=255, blank=True)
    bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    parameter_count = models.PositiveBigIntegerField(default=0)
    nonzero_parameters = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model", "-number"]
        constraints = [models.UniqueConstraint(fields=["model", "number"], name="model_version_number_unique")]

    def __str__(self):
        return f"{self.model.name} v{self.number}"


class Alias(models.Model):
    """A movable name ("production", "staging") for one version of a model."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="aliases")
    name = models.SlugField(max_length=50)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="alias_name_unique_in_model")]

    def __str__(self):
        return f"{self.model.name}@{self.name}"


class AliasMove(models.Model):
    """The history of an alias: every time it was set or moved, by whom."""

    alias = models.ForeignKey(Alias, on_delete=models.CASCADE, related_name="moves")
    from_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, related_name="+")
    to_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    moved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    moved_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-moved_at", "-pk"]

    def __str__(self):
        return f"{self.alias}: v{self.from_version.number if self.from_version else '-'} -> v{self.to_version.number}"


class Evaluation(WorkResult):
    """Measurements of one version on one dataset version's test split, taken by a worker."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="evaluations")
    accuracy = models.FloatField(null=True, blank=True)
    loss = models.FloatField(null=True, blank=True)
    macro_f1 = models.FloatField(null=True, blank=True)
    confusion_matrix = models.JSONField(default=list, blank=True)
    sample_count = models.PositiveIntegerField(default=0)
    parameter_count = models.PositiveBigIntegerField(default=0)
    nonzero_parameters = models.PositiveBigIntegerField(default=0)
    artifact_bytes = models.PositiveBigIntegerField(default=0)
    flops_per_sample = models.PositiveBigIntegerField(default=0)
    latency_ms = models.FloatField(null=True, blank=True, help_text="Milliseconds per sample at batch 1.")
    throughput = models.FloatField(null=True, blank=True, help_text="Samples per second at batch 64.")
    device = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["version", "dataset_version"], name="evaluation_unique_per_dataset")
        ]


class ModelExport(WorkResult):
    """The version in another format (ONNX), checked against torch by running it."""

    class Format(models.TextChoices):
        ONNX = "onnx", "ONNX"

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=20, choices=Format.choices)
    artifact = models.CharField(max_length=255, blank=True)
    bytes = models.PositiveBigIntegerField(default=0)
    max_abs_diff = models.FloatField(null=True, blank=True, help_text="Largest output difference from torch.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["format"]
        constraints = [models.UniqueConstraint(fields=["version", "format"], name="export_unique_per_format")]
