"""Deployments, their predict-only keys and their request statistics."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Team
from apps.registry.models import Model, ModelVersion


class Deployment(models.Model):
    """A model served behind `POST /api/v1/deployments/<id>/predict`.

    It serves either one pinned `version` or whatever version the model's `alias` points
    at when a request arrives, so moving the alias switches the deployment with no restart.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="deployments")
    name = models.CharField(max_length=100)
    # A model that serves traffic is not deleted from under it: delete its deployments first. RESTRICT
    # (not PROTECT) so that deleting the whole team, which takes its deployments too, still works.
    model = models.ForeignKey(Model, on_delete=models.RESTRICT, related_name="deployments")
    version = models.ForeignKey(
        ModelVersion, on_delete=models.RESTRICT, null=True, blank=True, related_name="deployments"
    )
    alias = models.CharField(max_length=50, blank=True, help_text="Follow this alias of the model instead.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="deployment_name_unique_in_team"),
            models.CheckConstraint(
                condition=(Q(version__isnull=False) & Q(alias="")) | (Q(version__isnull=True) & ~Q(alias="")),
                name="deployment_version_or_alias",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def target(self) -> str:
        """What it serves, in words: "iris-mlp v3" or "iris-mlp@production"."""
        if self.alias:
            return f"{self.model.name}@{self.alias}"
        return f"{self.model.name} v{self.version.number}"


class DeploymentKey(models.Model):
    """A key that authorizes predict requests to one deployment and nothing else.

    Like API tokens, only a SHA-256 of the secret is stored and the secret is shown once.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "deployment key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class RequestBucket(models.Model):
    """Predict requests of one deployment in one minute whose latency fell in one histogram bucket.

    One row per (deployment, minute, latency bucket), counted up with F() expressions: a
    request costs one UPDATE (an INSERT the first time), and percentiles of any window come
    from summing the buckets (see apps.deployments.stats).
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="request_buckets")
    minute = models.DateTimeField()
    bucket = models.PositiveSmallIntegerField(help_text="Index of the latency bucket (stats.bucket_bounds).")
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    latency_ms_total = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deployment", "minute", "bucket"], name="request_bucket_unique")]
        indexes = [models.Index(fields=["deployment", "minute"])]

    def __str__(self):
        return f"{self.deployment_id} {self.minute:%Y-%m-%d %H:%M} bucket {self.bucket}: {self.requests}"
