"""API shapes of deployments, their keys, predictions and request statistics."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api.fields import IdField
from apps.deployments.models import Deployment, DeploymentKey


class SummarySerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    mean_ms = serializers.FloatField(allow_null=True)
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    p99_ms = serializers.FloatField(allow_null=True)


class DeploymentSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model = serializers.IntegerField(source="model_id", read_only=True)
    model_name = serializers.CharField(source="model.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True, allow_null=True, default=None)
    alias = serializers.CharField(read_only=True, allow_null=True, default=None)
    serving_version = serializers.IntegerField(
        source="serving_number", read_only=True, allow_null=True, help_text="The version predict answers with now."
    )
    predict_url = serializers.SerializerMethodField()
    last_24h = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Deployment
        fields = [
            "id",
            "team",
            "name",
            "model",
            "model_name",
            "version",
            "alias",
            "serving_version",
            "status",
            "predict_url",
            "last_24h",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, deployment):
        data = super().to_representation(deployment)
        data["alias"] = deployment.alias or None
        return data

    def get_predict_url(self, deployment) -> str:
        return reverse("api:deployment-predict", args=[deployment.pk])

    @extend_schema_field(SummarySerializer)
    def get_last_24h(self, deployment) -> dict:
        """Requests, errors and latency percentiles of the last 24 hours (context["recent"][pk])."""
        return self.context["recent"][deployment.pk].as_dict()


class DeploymentCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    model = IdField(help_text="Id of one of your models; the deployment belongs to its team.")
    version = IdField(required=False, help_text="Serve this version number…")
    alias = serializers.CharField(required=False, max_length=50, help_text="…or follow this alias as it moves.")


class DeploymentUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=100)
    status = serializers.ChoiceField(required=False, choices=Deployment.Status.choices)
    version = IdField(required=False)
    alias = serializers.CharField(required=False, max_length=50)


class DeploymentKeySerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = DeploymentKey
        fields = ["id", "name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at", "is_active"]
        read_only_fields = fields


class DeploymentKeyCreatedSerializer(DeploymentKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. Shown once; store it now.")

    class Meta(DeploymentKeySerializer.Meta):
        fields = [*DeploymentKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class DeploymentKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class PredictRequestSerializer(serializers.Serializer):
    """JSON: a batch of raw samples. Multipart: one image file instead."""

    inputs = serializers.JSONField(
        required=False,
        help_text="A list of samples: feature vectors, or images as channels x height x width (0-255) arrays.",
    )
    image = serializers.FileField(required=False, help_text="Multipart: one PNG or JPEG, resized for the model.")
    k = serializers.IntegerField(required=False, help_text="How many classes per sample (default 5).")


class ClassScoreSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    probability = serializers.FloatField()


class PredictionSerializer(serializers.Serializer):
    top_k = ClassScoreSerializer(many=True)


class PredictResponseSerializer(serializers.Serializer):
    deployment = serializers.IntegerField()
    model = serializers.IntegerField()
    version = serializers.IntegerField(help_text="The version that answered.")
    alias = serializers.CharField(allow_null=True)
    predictions = PredictionSerializer(many=True)


class MinuteSerializer(SummarySerializer):
    minute = serializers.DateTimeField()


class StatsSerializer(serializers.Serializer):
    window_minutes = serializers.IntegerField()
    totals = SummarySerializer()
    minutes = MinuteSerializer(many=True)
    chart = serializers.DictField(help_text="A plotly figure of requests and latency per minute.")
