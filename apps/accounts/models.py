"""Teams, memberships and roles, API tokens, plans, quotas and the usage ledger."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Role(models.TextChoices):
    """Roles in a team, strongest first. `Role.rank` orders them for "at least" checks."""

    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"

    @classmethod
    def rank(cls, role: str) -> int:
        return {cls.VIEWER: 0, cls.MEMBER: 1, cls.ADMIN: 2, cls.OWNER: 3}[role]


class Team(models.Model):
    """The unit of tenancy: every dataset, model, job and deployment belongs to one team."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    """A user's role in one team.

    A membership an admin adds is an invitation until the user accepts it (`accepted_at`):
    until then it gives no access, so nobody can pull a user into a team without consent.
    Memberships an operator or the team's creator makes are accepted at once (the default).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="membership_unique_user_team")]
        ordering = ["team__name", "user__username"]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"

    def has_role(self, at_least: str) -> bool:
        return self.accepted_at is not None and Role.rank(self.role) >= Role.rank(at_least)

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 of the secret is stored; the secret is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The token's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Plan(models.Model):
    """An admin-editable template of limits. A team on a plan gets its limits in one step."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    is_default = models.BooleanField(default=False, help_text="New teams start on this plan.")
    max_concurrent_gpus = models.PositiveIntegerField(help_text="GPUs a team may hold at once.")
    max_running_jobs = models.PositiveIntegerField(help_text="Jobs a team may run at once.")
    gpu_hours_per_month = models.PositiveIntegerField(help_text="GPU-hours per calendar month (UTC).")
    storage_bytes = models.PositiveBigIntegerField(help_text="Bytes of datasets and model artifacts.")

    class Meta:
        ordering = ["max_concurrent_gpus", "name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="plan_single_default")
        ]

    def __str__(self):
        return self.name

    def get_constraints(self):
        # Marking a plan default moves the mark from the previous default (plans.plan_save),
        # so validation skips the single-default constraint: it is the database's safety net.
        return [
            (model, [c for c in constraints if c.name != "plan_single_default"])
            for model, constraints in super().get_constraints()
        ]


QUOTA_LIMITS = ("max_concurrent_gpus", "max_running_jobs", "gpu_hours_per_month", "storage_bytes")


class TeamQuota(models.Model):
    """A team's plan plus per-limit overrides; a blank override means "as the plan says"."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="quota")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="quotas")
    max_concurrent_gpus = models.PositiveIntegerField(null=True, blank=True)
    max_running_jobs = models.PositiveIntegerField(null=True, blank=True)
    gpu_hours_per_month = models.PositiveIntegerField(null=True, blank=True)
    storage_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    allowed_pools = models.CharField(
        max_length=500,
        blank=True,
        help_text='Node pools the team may use, comma-separated (e.g. "cpu, t4"); blank: every pool.',
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "team quota"

    def __str__(self):
        return f"Quota of {self.team}"

    def clean(self):
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_slug

        for pool in self.pools:
            try:
                validate_slug(pool)
            except ValidationError as invalid:
                problem = f'"{pool}" is not a pool name (letters, digits, - and _).'
                raise ValidationError({"allowed_pools": problem}) from invalid
        self.allowed_pools = ", ".join(sorted(self.pools))

    @property
    def pools(self) -> frozenset[str]:
        """The pools the team is limited to; empty: no limit."""
        return frozenset(p.strip() for p in self.allowed_pools.split(",") if p.strip())

    def limit(self, name: str) -> int:
        """The effective limit: the override when set, else the plan's value."""
        override = getattr(self, name)
        return override if override is not None else getattr(self.plan, name)


class UsageRecord(models.Model):
    """One line of the usage ledger (GPU-seconds of an attempt, bytes stored or freed).

    `source` names what caused the line (e.g. "job:12:attempt:2"); it is unique per
    kind, so writing the same usage twice is refused by the database: exactly once.
    """

    class Kind(models.TextChoices):
        GPU_SECONDS = "gpu_seconds", "GPU-seconds"
        STORAGE_BYTES = "storage_bytes", "Storage bytes"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="usage_records")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    amount = models.BigIntegerField(help_text="Negative for storage that was freed.")
    source = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["kind", "source"], name="usage_once_per_source")]
        indexes = [models.Index(fields=["team", "kind", "created_at"])]

    def __str__(self):
        return f"{self.team}: {self.amount} {self.kind} ({self.source})"
