"""REST API of the registry. Thin: services decide, selectors scope."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import team_for_user
from apps.core.api.views import LimitedUploadMixin, ScopedQuerysetMixin, StrictQueryParamsMixin, file_download_responses
from apps.core.converters import ID_REGEX
from apps.core.errors import ApplicationError, NotFound
from apps.core.storage import download_response
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import dataset_for_user, latest_ready_version
from apps.registry import evaluations, exports, selectors, services
from apps.registry.architectures import catalog
from apps.registry.filters import ModelFilter, VersionFilter
from apps.registry.models import Alias, Evaluation, Model, ModelExport, ModelVersion
from apps.registry.serializers import (
    AliasSerializer,
    AliasSetSerializer,
    DatasetRefSerializer,
    EvaluationSerializer,
    ExportCreateSerializer,
    ExportSerializer,
    ModelCreateSerializer,
    ModelSerializer,
    ModelVersionSerializer,
    ModelVersionUploadSerializer,
)


class ArchitectureCatalogView(StrictQueryParamsMixin, APIView):
    """The architecture families a model can use, their tasks and parameters with defaults."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response({"results": catalog()})


def dataset_version_for(user, data: dict) -> DatasetVersion:
    """The dataset version a request names: {"dataset": id, "dataset_version": number or latest ready}."""
    dataset = dataset_for_user(user, data["dataset"])
    if data.get("dataset_version"):
        version = dataset.versions.filter(number=data["dataset_version"]).first()
    else:
        version = latest_ready_version(dataset)
    if version is None:
        raise ApplicationError(
            f"dataset: {dataset.name} has no such ready version.", fields={"dataset": ["No version."]}
        )
    return version


class ModelViewSet(
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Models of your teams, with their best accuracy and smallest artifact."""

    model = Model
    serializer_class = ModelSerializer
    filterset_class = ModelFilter
    ordering_fields = ["name", "created_at", "best_accuracy", "smallest_bytes"]

    def scoped_queryset(self):
        return selectors.models_for_user(self.request.user)

    @extend_schema(request=ModelCreateSerializer, responses={201: ModelSerializer})
    def create(self, request):
        params = ModelCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        dataset = dataset_for_user(request.user, data["dataset"]) if data.get("dataset") else None
        model = services.model_create(
            actor=request.user,
            team=team_for_user(request.user, data["team"]),
            name=data["name"],
            task=data["task"],
            architecture=data["architecture"],
            dataset=dataset,
            description=data["description"],
        )
        return Response(self.get_serializer(self.scoped_queryset().get(pk=model.pk)).data, status=201)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.model_delete(actor=request.user, model=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelChildMixin(ScopedQuerysetMixin):
    def get_parent_model(self) -> Model:
        if not hasattr(self, "_model"):
            self._model = selectors.model_for_user(self.request.user, self.kwargs["model_pk"])
        return self._model


class VersionViewSet(
    LimitedUploadMixin, ModelChildMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Versions of a model, with lineage, measurements and aliases. POST uploads weights (multipart)."""

    model = ModelVersion
    serializer_class = ModelVersionSerializer
    filterset_class = VersionFilter
    ordering_fields = ["number", "created_at", "bytes", "nonzero_parameters"]
    lookup_field = "number"
    lookup_value_regex = ID_REGEX

    def scoped_queryset(self):
        return selectors.model_versions(self.get_parent_model())

    @extend_schema(
        request={"multipart/form-data": ModelVersionUploadSerializer}, responses={202: ModelVersionSerializer}
    )
    def create(self, request, model_pk=None):
        model = self.get_parent_model()
        self.refuse_oversized_upload(request)
        params = ModelVersionUploadSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        version = services.version_upload(
            actor=request.user,
            model=model,
            uploaded_file=data["file"],
            dataset_version=dataset_version_for(request.user, data),
            spec=data.get("architecture"),
            label=data["label"],
        )
        return Response(ModelVersionSerializer(self.scoped_queryset().get(pk=version.pk)).data, status=202)

    @extend_schema(responses=file_download_responses("application/octet-stream"))
    @action(detail=True, methods=["get"])
    def download(self, request, model_pk=None, number=None):
        version = self.get_object()
        if version.status != ModelVersion.Status.READY:
            raise NotFound(f"Version {number} is {version.status}; it has no weights yet.")
        filename = f"{version.model.name}-v{version.number}.safetensors"
        return download_response(version.artifact, filename=filename)


class VersionChildMixin(ModelChildMixin):
    def get_version(self) -> ModelVersion:
        if not hasattr(self, "_version"):
            self._version = selectors.version_for_user(
                self.request.user, self.kwargs["model_pk"], self.kwargs["version_number"]
            )
        return self._version


class EvaluationViewSet(VersionChildMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Measurements of one version. POST {dataset, dataset_version?} to measure it (202)."""

    model = Evaluation
    serializer_class = EvaluationSerializer
    ordering_fields = ["created_at", "accuracy"]

    def scoped_queryset(self):
        return selectors.version_evaluations(self.get_version())

    @extend_schema(request=DatasetRefSerializer, responses={202: EvaluationSerializer})
    def create(self, request, model_pk=None, version_number=None):
        version = self.get_version()
        params = DatasetRefSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        evaluation = evaluations.evaluation_request(
            actor=request.user,
            version=version,
            dataset_version=dataset_version_for(request.user, params.validated_data),
        )
        return Response(EvaluationSerializer(evaluation).data, status=202)


class ExportViewSet(VersionChildMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Exports of one version (ONNX, checked in onnxruntime). POST {format} to make one (202)."""

    model = ModelExport
    serializer_class = ExportSerializer
    lookup_field = "format"
    lookup_url_kwarg = "export_format"  # DRF reserves the `format` kwarg for suffixes like .json
    ordering_fields = ["format", "created_at"]

    def scoped_queryset(self):
        return selectors.version_exports(self.get_version())

    @extend_schema(request=ExportCreateSerializer, responses={202: ExportSerializer})
    def create(self, request, model_pk=None, version_number=None):
        version = self.get_version()
        params = ExportCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        export = exports.export_request(actor=request.user, version=version, format=params.validated_data["format"])
        return Response(ExportSerializer(export).data, status=202)

    @extend_schema(responses=file_download_responses("application/octet-stream"))
    @action(detail=True, methods=["get"])
    def download(self, request, model_pk=None, version_number=None, export_format=None):
        export = self.get_object()
        if export.status != ModelExport.Status.READY:
            raise NotFound(f"The {export_format} export is {export.status}.")
        version = export.version
        filename = f"{version.model.name}-v{version.number}.{export.format}"
        return download_response(export.artifact, filename=filename)


class AliasViewSet(
    ModelChildMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Aliases of a model with their history. POST {name, version} sets or moves one."""

    model = Alias
    serializer_class = AliasSerializer
    lookup_field = "name"
    ordering_fields = ["name", "updated_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self):
        return selectors.model_aliases(self.get_parent_model())

    def _set(self, request, name):
        model = self.get_parent_model()
        params = AliasSetSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        name = name or params.validated_data.get("name") or ""
        version = model.versions.filter(number=params.validated_data["version"]).first()
        if version is None:
            raise ApplicationError("version: no such version of this model.", fields={"version": ["Not found."]})
        alias = services.alias_set(actor=request.user, model=model, name=name, version=version)
        return AliasSerializer(self.scoped_queryset().get(pk=alias.pk)).data

    @extend_schema(request=AliasSetSerializer, responses={200: AliasSerializer})
    def create(self, request, model_pk=None):
        return Response(self._set(request, None))

    @extend_schema(request=AliasSetSerializer, responses={200: AliasSerializer})
    def partial_update(self, request, model_pk=None, name=None):
        self.get_object()
        return Response(self._set(request, name))

    @extend_schema(responses={204: None})
    def destroy(self, request, model_pk=None, name=None):
        services.alias_delete(actor=request.user, alias=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
