"""REST API of datasets and versions. Thin: services decide, selectors scope."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.selectors import team_for_user
from apps.core.api.views import LimitedUploadMixin, ScopedQuerysetMixin, file_download_responses
from apps.core.converters import ID_REGEX
from apps.core.errors import NotFound
from apps.core.storage import download_response, inline_response
from apps.datasets import selectors, services
from apps.datasets.filters import DatasetFilter, VersionFilter
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.serializers import (
    DatasetCreateSerializer,
    DatasetSerializer,
    DatasetVersionSerializer,
    DatasetVersionUploadSerializer,
    PreviewSerializer,
)

UPLOAD_OPTIONS = ("label_column", "height", "width", "channels", "seed")


class DatasetViewSet(
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Datasets of your teams. Filter with ?team=<slug>, ?task=, ?name=."""

    model = Dataset
    serializer_class = DatasetSerializer
    filterset_class = DatasetFilter
    ordering_fields = ["name", "created_at", "total_bytes", "version_count"]

    def scoped_queryset(self):
        return selectors.datasets_for_user(self.request.user)

    @extend_schema(request=DatasetCreateSerializer, responses={201: DatasetSerializer})
    def create(self, request):
        params = DatasetCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        dataset = services.dataset_create(
            actor=request.user,
            team=team_for_user(request.user, data["team"]),
            name=data["name"],
            task=data["task"],
            description=data["description"],
        )
        return Response(self.get_serializer(self.scoped_queryset().get(pk=dataset.pk)).data, status=201)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.dataset_delete(actor=request.user, dataset=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionViewSet(
    LimitedUploadMixin,
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Versions of one dataset. POST a file (multipart) or a bundled set (JSON) to add one."""

    model = DatasetVersion
    serializer_class = DatasetVersionSerializer
    filterset_class = VersionFilter
    ordering_fields = ["number", "created_at", "bytes", "sample_count"]
    lookup_field = "number"
    lookup_value_regex = ID_REGEX

    def get_dataset(self) -> Dataset:
        if not hasattr(self, "_dataset"):
            self._dataset = selectors.dataset_for_user(self.request.user, self.kwargs["dataset_pk"])
        return self._dataset

    def scoped_queryset(self):
        return selectors.dataset_versions(self.get_dataset())

    @extend_schema(request=DatasetVersionUploadSerializer, responses={202: DatasetVersionSerializer})
    def create(self, request, dataset_pk=None):
        dataset = self.get_dataset()
        self.refuse_oversized_upload(request)
        params = DatasetVersionUploadSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        if values.get("bundled"):
            version = services.version_bundled(
                actor=request.user,
                dataset=dataset,
                name=values["bundled"],
                params=values.get("params"),
                seed=values["seed"],
            )
        else:
            version = services.version_upload(
                actor=request.user,
                dataset=dataset,
                uploaded_file=values["file"],
                source_format=values.get("format"),
                options={name: values.get(name) for name in UPLOAD_OPTIONS},
            )
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)

    def _ready_version(self, number) -> DatasetVersion:
        version = self.get_object()
        if version.status != DatasetVersion.Status.READY:
            raise NotFound(f"Version {number} is {version.status}; it has no data yet.")
        return version

    @extend_schema(responses=PreviewSerializer)
    @action(detail=True, methods=["get"])
    def preview(self, request, dataset_pk=None, number=None):
        version = self._ready_version(number)
        body = {**version.preview, "chart": selectors.class_count_chart(version)}
        if version.preview_image:
            body["grid_url"] = reverse("api:dataset-version-preview-image", args=[version.dataset_id, number])
        return Response(body)

    @extend_schema(responses=file_download_responses("application/octet-stream"))
    @action(detail=True, methods=["get"])
    def download(self, request, dataset_pk=None, number=None):
        version = self._ready_version(number)
        filename = f"{version.dataset.name}-v{version.number}.safetensors"
        return download_response(version.artifact, filename=filename)

    @extend_schema(responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY)})
    @action(detail=True, methods=["get"], url_path="preview.png", url_name="preview-image")
    def preview_image(self, request, dataset_pk=None, number=None):
        version = self._ready_version(number)
        if not version.preview_image:
            raise NotFound("Only image datasets have a preview image.")
        return inline_response(version.preview_image, content_type="image/png")
