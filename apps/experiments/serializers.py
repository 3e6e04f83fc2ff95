"""API shapes of experiments and trials."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api.fields import IdField
from apps.experiments.models import Experiment, Trial
from apps.experiments.services import EXPERIMENT_PARAMS


class TrialSerializer(serializers.ModelSerializer):
    model = serializers.IntegerField(source="version.model_id", read_only=True, allow_null=True, default=None)
    version = serializers.IntegerField(source="version.number", read_only=True, allow_null=True, default=None)
    job = serializers.IntegerField(source="job_id", read_only=True, allow_null=True)
    baseline = serializers.BooleanField(source="is_baseline", read_only=True)

    class Meta:
        model = Trial
        fields = [
            "number",
            "label",
            "family",
            "recipe",
            "baseline",
            "status",
            "error",
            "job",
            "model",
            "version",
            "evaluation",
            "accuracy",
            "artifact_bytes",
            "parameter_count",
            "nonzero_parameters",
            "flops_per_sample",
            "latency_ms",
            "within_target",
            "on_size_frontier",
            "on_latency_frontier",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class RecommendedSerializer(serializers.Serializer):
    trial = serializers.IntegerField(source="number")
    model = serializers.IntegerField(source="version.model_id")
    version = serializers.IntegerField(source="version.number")
    label = serializers.CharField()
    accuracy = serializers.FloatField()
    bytes = serializers.IntegerField(source="artifact_bytes")
    latency_ms = serializers.FloatField(allow_null=True)


class ExperimentSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model = serializers.IntegerField(source="base_version.model_id", read_only=True)
    base_version = serializers.IntegerField(source="base_version.number", read_only=True)
    dataset = serializers.IntegerField(source="train_dataset_version.dataset_id", read_only=True)
    dataset_version = serializers.IntegerField(source="train_dataset_version.number", read_only=True)
    eval_dataset = serializers.IntegerField(source="eval_dataset_version.dataset_id", read_only=True)
    eval_dataset_version = serializers.IntegerField(source="eval_dataset_version.number", read_only=True)
    trials_total = serializers.IntegerField(read_only=True)
    trials_finished = serializers.IntegerField(read_only=True)
    recommended = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Experiment
        fields = [
            "id",
            "team",
            "name",
            "description",
            "model",
            "base_version",
            "dataset",
            "dataset_version",
            "eval_dataset",
            "eval_dataset_version",
            "max_accuracy_drop",
            "objective",
            "strategy",
            "budget",
            "recipes",
            "finetune_epochs",
            "learning_rate",
            "seed",
            "status",
            "status_reason",
            "trials_total",
            "trials_finished",
            "recommended",
            "created_by",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(RecommendedSerializer(allow_null=True))
    def get_recommended(self, experiment) -> dict | None:
        best = experiment.recommended
        return RecommendedSerializer(best).data if best is not None and best.version is not None else None


class ExperimentCreateSerializer(EXPERIMENT_PARAMS.serializer("ExperimentSettings")):
    """The experiment's references here; its settings (drop, objective, strategy, budget, …) from EXPERIMENT_PARAMS."""

    team = serializers.SlugField(required=False, help_text="Default: the model's team.")
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    model = IdField(help_text="The model whose version is compressed.")
    base_version = IdField(help_text="Its version number (a float version).")
    dataset = IdField(help_text="The dataset to fine-tune on.")
    dataset_version = IdField(required=False, help_text="Default: its latest ready.")
    eval_dataset = IdField(required=False, help_text="Default: the training dataset.")
    eval_dataset_version = IdField(required=False)
    recipes = serializers.JSONField(required=False, default=list, help_text="Grid: a list of recipes (lists of steps).")


class PromoteSerializer(serializers.Serializer):
    trial = IdField(required=False, min_value=0, help_text="The trial whose version to promote.")
    version = IdField(required=False, help_text="Or the version number (of a trial's version).")
    alias = serializers.SlugField(default="production", max_length=50)
