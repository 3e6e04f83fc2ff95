"""Jobs: queued work with a state machine, a lease per attempt, progress, metrics, logs, checkpoints."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Team


class JobKind(models.TextChoices):
    """Every kind of background work; each registers its handler with `apps.jobs.kinds`."""

    INGEST = "ingest", "Ingest"
    IMPORT = "import", "Import"
    TRAIN = "train", "Train"
    EVALUATE = "evaluate", "Evaluate"
    COMPRESS = "compress", "Compress"
    EXPORT = "export", "Export"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """One unit of work a worker runs for a team. Status changes only through `transitions.job_transition`.

    A job with `nodes` > 1 (a gang) runs as one rank per node (`JobRank`): rank 0 is the job
    row's own attempt (`node`, `gpu_indexes`, `dispatched_at`, `claimed_at`, `heartbeat_at` are
    rank 0's), the other ranks' rows carry theirs. Rank 0 writes `rendezvous_address` and
    `rendezvous_port` for the attempt; placement clears them.

    `attempts` counts dispatched attempts: only the attempt whose number equals `attempts` may
    write, and only while the job is running (see apps.jobs.transitions). `dispatched_at` is set
    once the current attempt's task is in the broker (empty: placed, but the placer died before
    it could hand the task over; a sweep sends it). `claimed_at` is set when a worker takes the
    current attempt; `heartbeat_at` is refreshed while it works (and set when it is placed, so a
    task the broker lost is noticed too).
    """

    RUNNING = Q(status=JobStatus.RUNNING)

    attempts = models.PositiveSmallIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="jobs")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    kind = models.CharField(max_length=20, choices=JobKind.choices)
    spec = models.JSONField(help_text="The kind's validated parameters.")
    summary = models.CharField(max_length=300, blank=True, help_text='What it works on, e.g. "iris-mlp v2 on iris v1".')
    priority = models.SmallIntegerField(default=0, help_text="Higher runs first within the team.")
    gpus = models.PositiveSmallIntegerField(default=0, help_text="GPUs the job needs; 0 runs on any node.")
    pool = models.SlugField(max_length=50, blank=True, help_text="The node pool it must run in; blank: any pool.")
    gpu_model = models.CharField(
        max_length=100, blank=True, help_text='A GPU model its GPUs must match (part of the name, e.g. "A100").'
    )
    min_gpu_memory_bytes = models.PositiveBigIntegerField(null=True, blank=True, help_text="Memory each GPU needs.")
    nodes = models.PositiveSmallIntegerField(default=1, help_text="Nodes the job spans; gpus is per node.")
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    status_reason = models.TextField(blank=True, help_text="Why the job is in its status (or waiting).")
    max_attempts = models.PositiveSmallIntegerField(default=3)
    progress = models.FloatField(default=0.0, help_text="0..1")
    progress_step = models.CharField(max_length=200, blank=True, help_text='e.g. "epoch 3 of 10"')
    eta_seconds = models.FloatField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    checkpoint = models.CharField(max_length=255, blank=True, help_text="The last checkpoint in storage.")
    checkpoint_epoch = models.PositiveIntegerField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="Links to what the job made.")
    device = models.CharField(max_length=200, blank=True)
    node = models.ForeignKey("nodes.Node", on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs")
    gpu_indexes = models.JSONField(default=list, blank=True, help_text="The node's GPUs the job holds (or held).")
    rendezvous_address = models.CharField(
        max_length=255, blank=True, help_text="A multi-node job's rank-0 address, written by rank 0 for the others."
    )
    rendezvous_port = models.PositiveIntegerField(
        null=True, blank=True, help_text="Its rendezvous port (rank 0's TCPStore)."
    )
    time_limit_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="Stopped and failed past it.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "priority", "created_at"]),
            # The scheduler's fair order: each team's queued jobs by priority, then age.
            models.Index(
                fields=["team", "-priority", "created_at", "id"], condition=Q(status="queued"), name="job_queued_fair"
            ),
        ]

    def __str__(self):
        return f"job {self.pk} ({self.kind})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()


class JobEpoch(models.Model):
    """One epoch's figures, written when the epoch ends (a resumed attempt rewrites the same epoch)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="epochs")
    attempt = models.PositiveSmallIntegerField()
    epoch = models.PositiveIntegerField()
    train_loss = models.FloatField()
    train_accuracy = models.FloatField(null=True, blank=True)
    val_loss = models.FloatField(null=True, blank=True)
    val_accuracy = models.FloatField(null=True, blank=True)
    samples_per_second = models.FloatField()
    learning_rate = models.FloatField()
    seconds = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "epoch"]
        constraints = [models.UniqueConstraint(fields=["job", "epoch"], name="job_epoch_unique")]

    def __str__(self):
        return f"{self.job} epoch {self.epoch}"


class JobLogLine(models.Model):
    """A line of a job's log: the runner's own lines, the kind's, and captured warnings."""

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_lines")
    attempt = models.PositiveSmallIntegerField()
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return f"{self.created_at:%H:%M:%S} {self.level} {self.message[:60]}"


class GpuLease(models.Model):
    """A GPU held by a job while it is scheduled or running. One row per GPU: the database
    itself refuses to give one GPU to two jobs (the unique constraint on `gpu`)."""

    gpu = models.OneToOneField("nodes.Gpu", on_delete=models.CASCADE, related_name="lease")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="gpu_leases")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.gpu} -> {self.job}"


class SchedulerState(models.Model):
    """The one row that coalesces placement passes and paces the reaper (see apps.jobs.scheduler).

    `pass_pending`: a pass task is in the broker and has not started yet, so another request
    needs no task of its own. `last_reap_at`: when a node heartbeat last ran the reaper.
    """

    pass_pending = models.BooleanField(default=False)
    pass_requested_at = models.DateTimeField(null=True, blank=True)
    last_pass_at = models.DateTimeField(null=True, blank=True)
    last_reap_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return "scheduler state"


class JobRank(models.Model):
    """One node's share of a multi-node job's current attempt: which node and GPUs, and its worker's liveness.

    Written whole by the placement that admits the gang (apps.jobs.gang) and replaced by the
    next one. Rank 0's liveness is the job row's; ranks 1.. write theirs here, only while the
    job is still at `attempt` (a rank of an older attempt is refused and stops).
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="ranks")
    rank = models.PositiveSmallIntegerField(help_text="The node's place in the gang (its ranks are rank x per-node).")
    node = models.ForeignKey("nodes.Node", on_delete=models.CASCADE, related_name="job_ranks")
    gpu_indexes = models.JSONField(default=list, blank=True)
    attempt = models.PositiveSmallIntegerField()
    dispatched_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["job", "rank"], name="job_rank_unique"),
            models.UniqueConstraint(fields=["job", "node"], name="job_rank_one_per_node"),
        ]

    def __str__(self):
        return f"{self.job} rank {self.rank} on {self.node_id}"
