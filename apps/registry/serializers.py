"""API shapes of models, versions, evaluations, exports and aliases."""

from django.urls import reverse
from rest_framework import serializers

from apps.core.api.fields import IdField
from apps.core.api.work import WorkFieldsMixin, WorkListSerializer
from apps.core.work import attach_states
from apps.datasets.models import Task
from apps.registry.models import Alias, AliasMove, Evaluation, Model, ModelExport, ModelVersion


class EvaluationSerializer(WorkFieldsMixin, serializers.ModelSerializer):
    dataset = serializers.IntegerField(source="dataset_version.dataset_id", read_only=True)
    dataset_name = serializers.CharField(source="dataset_version.dataset.name", read_only=True)
    dataset_version = serializers.IntegerField(source="dataset_version.number", read_only=True)

    class Meta:
        model = Evaluation
        list_serializer_class = WorkListSerializer
        fields = [
            "id",
            "dataset",
            "dataset_name",
            "dataset_version",
            "status",
            "error",
            *WorkFieldsMixin.WORK_FIELDS,
            "accuracy",
            "loss",
            "macro_f1",
            "confusion_matrix",
            "sample_count",
            "parameter_count",
            "nonzero_parameters",
            "artifact_bytes",
            "flops_per_sample",
            "latency_ms",
            "throughput",
            "device",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class ExportSerializer(WorkFieldsMixin, serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ModelExport
        list_serializer_class = WorkListSerializer
        fields = [
            "format",
            "status",
            "error",
            *WorkFieldsMixin.WORK_FIELDS,
            "bytes",
            "max_abs_diff",
            "created_at",
            "finished_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, export) -> str | None:
        if export.status != ModelExport.Status.READY:
            return None
        version = export.version
        return reverse("api:model-version-export-download", args=[version.model_id, version.number, export.format])


class VersionListSerializer(WorkListSerializer):
    """A list of versions: the jobs of the versions and of their evaluations, in one query."""

    def to_representation(self, data):
        rows = list(data.all() if hasattr(data, "all") else data)
        attach_states([*rows, *(evaluation for row in rows for evaluation in row.evaluations.all())])
        return super().to_representation(rows)


class ModelVersionSerializer(WorkFieldsMixin, serializers.ModelSerializer):
    parent = serializers.IntegerField(source="parent.number", read_only=True, allow_null=True, default=None)
    trained_on = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)
    evaluations = EvaluationSerializer(many=True, read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        list_serializer_class = VersionListSerializer
        fields = [
            "number",
            "label",
            "source",
            "status",
            "error",
            *WorkFieldsMixin.WORK_FIELDS,
            "spec",
            "input_shape",
            "num_classes",
            "class_names",
            "preprocessing",
            "transforms",
            "parent",
            "trained_on",
            "produced_by_job",
            "bytes",
            "sha256",
            "parameter_count",
            "nonzero_parameters",
            "aliases",
            "evaluations",
            "created_by",
            "created_at",
            "finished_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_trained_on(self, version) -> dict | None:
        dataset_version = version.trained_on
        if dataset_version is None:
            return None
        return {
            "dataset": dataset_version.dataset_id,
            "name": dataset_version.dataset.name,
            "version": dataset_version.number,
        }

    def get_aliases(self, version) -> list[str]:
        return sorted(alias.name for alias in version.aliases.all())

    def get_download_url(self, version) -> str | None:
        if version.status != ModelVersion.Status.READY:
            return None
        return reverse("api:model-version-download", args=[version.model_id, version.number])


class ModelSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    dataset = serializers.IntegerField(source="dataset_id", read_only=True, allow_null=True)
    version_count = serializers.IntegerField(read_only=True)
    latest_version = serializers.IntegerField(source="latest_number", read_only=True, allow_null=True)
    best_accuracy = serializers.FloatField(read_only=True, allow_null=True)
    smallest_bytes = serializers.IntegerField(read_only=True, allow_null=True)
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = Model
        fields = [
            "id",
            "team",
            "name",
            "task",
            "description",
            "architecture",
            "dataset",
            "version_count",
            "latest_version",
            "best_accuracy",
            "smallest_bytes",
            "aliases",
            "created_at",
        ]
        read_only_fields = fields

    def get_aliases(self, model) -> dict[str, int]:
        return {alias.name: alias.version.number for alias in model.aliases.all()}


class ModelCreateSerializer(serializers.Serializer):
    team = serializers.SlugField()
    name = serializers.CharField(max_length=100)
    task = serializers.ChoiceField(choices=Task.choices)
    architecture = serializers.JSONField(help_text='e.g. {"family": "cnn_small"}; see /api/v1/architectures/')
    dataset = IdField(required=False, allow_null=True, help_text="Id of the dataset it is made for.")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class DatasetRefSerializer(serializers.Serializer):
    dataset = IdField(help_text="Dataset id (one of your team's).")
    dataset_version = IdField(required=False, help_text="Version number; default: latest ready.")


class ModelVersionUploadSerializer(DatasetRefSerializer):
    file = serializers.FileField(help_text=".safetensors, or a PyTorch state dict (.pt/.pth/.bin)")
    architecture = serializers.JSONField(required=False, help_text="Default: the model's architecture.")
    label = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)


class ExportCreateSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=ModelExport.Format.choices, default=ModelExport.Format.ONNX)


class AliasMoveSerializer(serializers.ModelSerializer):
    from_version = serializers.IntegerField(source="from_version.number", read_only=True, allow_null=True, default=None)
    to_version = serializers.IntegerField(source="to_version.number", read_only=True)
    moved_by = serializers.CharField(source="moved_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = AliasMove
        fields = ["from_version", "to_version", "moved_by", "moved_at"]
        read_only_fields = fields


class AliasSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", read_only=True)
    history = AliasMoveSerializer(source="moves", many=True, read_only=True)

    class Meta:
        model = Alias
        fields = ["name", "version", "updated_at", "history"]
        read_only_fields = fields


class AliasSetSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=50, required=False)
    version = IdField(help_text="The version number the alias points at.")
