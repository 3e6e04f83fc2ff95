"""API shapes of jobs: everything the job page shows, for scripts and the SDK."""

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from apps.jobs import kinds
from apps.jobs.models import Job, JobEpoch, JobKind, JobLogLine, JobRank
from apps.jobs.selectors import job_log_tail, job_waiting


class JobEpochSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEpoch
        fields = [
            "epoch",
            "attempt",
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "samples_per_second",
            "learning_rate",
            "seconds",
            "created_at",
        ]
        read_only_fields = fields


class JobLogLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobLogLine
        fields = ["id", "attempt", "level", "message", "created_at"]
        read_only_fields = fields


class JobRankSerializer(serializers.ModelSerializer):
    """Where one node's share of a multi-node job runs (its current or last attempt)."""

    node = serializers.CharField(source="node.name", read_only=True)

    class Meta:
        model = JobRank
        fields = ["rank", "node", "gpu_indexes", "attempt", "claimed_at", "heartbeat_at"]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    submitted_by = serializers.CharField(source="submitted_by.username", read_only=True, default=None, allow_null=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    cancel_requested = serializers.SerializerMethodField()
    node = serializers.CharField(source="node.name", read_only=True, default=None, allow_null=True)
    pool = serializers.CharField(read_only=True, help_text="The node pool it must run in; blank: any pool.")

    class Meta:
        model = Job
        fields = [
            "id",
            "team",
            "kind",
            "spec",
            "priority",
            "gpus",
            "pool",
            "gpu_model",
            "min_gpu_memory_bytes",
            "nodes",
            "status",
            "status_reason",
            "attempts",
            "max_attempts",
            "progress",
            "progress_step",
            "eta_seconds",
            "cancel_requested",
            "checkpoint_epoch",
            "result",
            "device",
            "node",
            "gpu_indexes",
            "time_limit_seconds",
            "submitted_by",
            "created_at",
            "scheduled_at",
            "started_at",
            "finished_at",
            "duration_seconds",
        ]
        read_only_fields = fields

    def get_cancel_requested(self, job) -> bool:
        return job.cancel_requested_at is not None


class JobWaitingSerializer(serializers.Serializer):
    """Why a queued job waits (`selectors.Waiting`)."""

    team_position = serializers.IntegerField(help_text="1: the next of its team to be placed.")
    team_queued = serializers.IntegerField()
    cluster_position = serializers.IntegerField(help_text="About: the fair order takes each team's jobs in turn.")
    cluster_queued = serializers.IntegerField()
    held_by = serializers.CharField(help_text="The limit that holds it: quota, pool, free GPUs of the size it needs.")
    estimated_start_seconds = serializers.FloatField(allow_null=True, help_text="From the running jobs' ETAs.")
    estimate_basis = serializers.CharField()


class JobDetailSerializer(JobSerializer):
    epochs = JobEpochSerializer(many=True, read_only=True)
    ranks = JobRankSerializer(many=True, read_only=True, help_text="A multi-node job's nodes (empty for one node).")
    log_tail = serializers.SerializerMethodField()
    waiting = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "epochs", "ranks", "log_tail", "waiting"]
        read_only_fields = fields

    @extend_schema_field(JobWaitingSerializer(allow_null=True))
    def get_waiting(self, job) -> dict | None:
        waiting = job_waiting(job)
        return None if waiting is None else JobWaitingSerializer(waiting).data

    def get_log_tail(self, job) -> list[dict]:
        return JobLogLineSerializer(job_log_tail(job), many=True).data


def _submittable_specs() -> list:
    return [handler.spec_serializer for handler in kinds.KINDS.values() if handler.submittable]


@extend_schema_field(
    PolymorphicProxySerializer(component_name="JobSpec", serializers=_submittable_specs, resource_type_field_name=None)
)
class JobSpecField(serializers.JSONField):
    """The kind's parameters; the schema shows each submittable kind's spec, derived from its declaration."""


class JobSubmitSerializer(serializers.Serializer):
    team = serializers.SlugField()
    kind = serializers.ChoiceField(choices=JobKind.choices)
    spec = JobSpecField()
    priority = serializers.IntegerField(default=0, min_value=-100, max_value=100)
    gpus = serializers.IntegerField(default=0, min_value=0, max_value=64, help_text="GPUs per node.")
    nodes = serializers.IntegerField(
        default=1, min_value=1, max_value=64, help_text="Nodes the job spans, all at once (train jobs only)."
    )
    pool = serializers.SlugField(max_length=50, default="", allow_blank=True, help_text="Node pool; blank: any.")
    gpu_model = serializers.CharField(
        max_length=100, default="", allow_blank=True, help_text='Part of the GPU model name, e.g. "A100".'
    )
    min_gpu_memory_bytes = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    max_attempts = serializers.IntegerField(required=False, min_value=1, max_value=20)
    time_limit_seconds = serializers.IntegerField(required=False, min_value=1, max_value=30 * 24 * 3600)


class JobKindSerializer(serializers.Serializer):
    """A job kind and its declared parameters (what the SDK and CLI show as help)."""

    kind = serializers.CharField()
    submittable = serializers.BooleanField()
    started_by = serializers.CharField(help_text="For kinds their own app starts: what starts them.")
    params = serializers.ListField(child=serializers.DictField(), help_text="name, type, required, default, minimum…")


class JobKindListSerializer(serializers.Serializer):
    """`GET /job-kinds/`: every kind under `results` (the shape of a page, without paging: there are few)."""

    results = JobKindSerializer(many=True)
