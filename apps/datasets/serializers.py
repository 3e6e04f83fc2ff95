"""API shapes of datasets and versions."""

from django.urls import reverse
from rest_framework import serializers

from apps.core.api.work import WorkFieldsMixin, WorkListSerializer
from apps.datasets.models import Dataset, DatasetVersion, SourceFormat, Task


class DatasetVersionSerializer(WorkFieldsMixin, serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True, read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        list_serializer_class = WorkListSerializer
        fields = [
            "number",
            "status",
            "error",
            *WorkFieldsMixin.WORK_FIELDS,
            "source_format",
            "source_name",
            "source_options",
            "sample_count",
            "sample_shape",
            "feature_names",
            "class_names",
            "class_counts",
            "split_seed",
            "split_counts",
            "preprocessing",
            "bytes",
            "sha256",
            "created_by",
            "created_at",
            "finished_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, version) -> str | None:
        if version.status != DatasetVersion.Status.READY:
            return None
        return reverse("api:dataset-version-download", args=[version.dataset_id, version.number])


class DatasetSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    version_count = serializers.IntegerField(read_only=True)
    total_bytes = serializers.IntegerField(read_only=True)
    latest_version = serializers.IntegerField(source="latest_number", read_only=True, allow_null=True)
    latest_status = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "team",
            "name",
            "description",
            "task",
            "version_count",
            "total_bytes",
            "latest_version",
            "latest_status",
            "created_at",
        ]
        read_only_fields = fields


class DatasetCreateSerializer(serializers.Serializer):
    team = serializers.SlugField(help_text="Slug of one of your teams.")
    name = serializers.CharField(max_length=100)
    task = serializers.ChoiceField(choices=Task.choices)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class DatasetVersionUploadSerializer(serializers.Serializer):
    """Multipart: a file and its options. JSON: a bundled set instead of a file."""

    file = serializers.FileField(required=False)
    format = serializers.ChoiceField(choices=SourceFormat.choices, required=False)
    bundled = serializers.CharField(required=False, help_text="digits, wine, breast_cancer, iris or synthetic")
    params = serializers.JSONField(required=False, help_text='synthetic: {"samples", "features", "classes", "seed"}')
    label_column = serializers.CharField(required=False, help_text="CSV: the label column (default: the last).")
    height = serializers.IntegerField(required=False, min_value=1, max_value=1024)
    width = serializers.IntegerField(required=False, min_value=1, max_value=1024)
    channels = serializers.ChoiceField(choices=[1, 3], required=False)
    seed = serializers.IntegerField(
        required=False, min_value=0, max_value=2**32 - 1, default=0, help_text="Seed of the split."
    )

    def validate(self, data):
        if bool(data.get("file")) == bool(data.get("bundled")):
            raise serializers.ValidationError({"file": ["Send a file, or name a bundled set — one of the two."]})
        return data


class PreviewSerializer(serializers.Serializer):
    class_counts = serializers.DictField(child=serializers.IntegerField())
    features = serializers.ListField(child=serializers.DictField(), required=False)
    rows = serializers.ListField(child=serializers.DictField(), required=False)
    grid = serializers.DictField(required=False)
    grid_url = serializers.CharField(required=False)
    chart = serializers.DictField(help_text="A plotly figure of the class counts.")
