"""REST API of deployments: CRUD, keys, request statistics and the predict endpoint. Thin."""

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.views import ScopedQuerysetMixin, StrictQueryParamsMixin
from apps.core.errors import ApplicationError, NotFound
from apps.deployments import selectors, services, stats
from apps.deployments.authentication import DeploymentKeyAuthentication, PredictThrottle, UserOrDeploymentKey
from apps.deployments.filters import DeploymentFilter
from apps.deployments.models import Deployment, DeploymentKey
from apps.deployments.serializers import (
    DeploymentCreateSerializer,
    DeploymentKeyCreatedSerializer,
    DeploymentKeyCreateSerializer,
    DeploymentKeySerializer,
    DeploymentSerializer,
    DeploymentUpdateSerializer,
    PredictRequestSerializer,
    PredictResponseSerializer,
    StatsSerializer,
)
from apps.deployments.serving import image_array, inputs_array
from apps.registry.models import ModelVersion
from apps.registry.selectors import model_for_user

STATS_MINUTES = (1, 24 * 60)
STATS_PARAMS = [
    OpenApiParameter(
        "minutes",
        int,
        description=f"The window: the last N minutes (default 60, {STATS_MINUTES[0]} to {STATS_MINUTES[1]}).",
    )
]


def model_version_or_400(model, number) -> ModelVersion | None:
    if number is None:
        return None
    version = model.versions.filter(number=number).first()
    if version is None:
        raise ApplicationError(
            f"version: model {model.name} has no version {number}.", fields={"version": ["Not found."]}
        )
    return version


class DeploymentViewSet(ScopedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deployments of your teams with what they serve now and their last 24 hours of requests."""

    model = Deployment
    serializer_class = DeploymentSerializer
    filterset_class = DeploymentFilter
    ordering_fields = ["name", "created_at", "status"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_query_params = {"stats": STATS_PARAMS}

    def scoped_queryset(self):
        return selectors.deployments_for_user(self.request.user)

    def _data(self, deployments: list[Deployment], *, many: bool):
        recent = selectors.recent_totals(deployments)
        serializer = DeploymentSerializer(
            deployments if many else deployments[0], many=many, context={"recent": recent}
        )
        return serializer.data

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._data(list(page), many=True))

    def retrieve(self, request, pk=None):
        return Response(self._data([self.get_object()], many=False))

    def _fresh(self, pk, status_code=200):
        return Response(self._data([self.scoped_queryset().get(pk=pk)], many=False), status=status_code)

    @extend_schema(request=DeploymentCreateSerializer, responses={201: DeploymentSerializer})
    def create(self, request):
        params = DeploymentCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        model = model_for_user(request.user, data["model"])
        deployment = services.deployment_create(
            actor=request.user,
            model=model,
            name=data["name"],
            version=model_version_or_400(model, data.get("version")),
            alias=data.get("alias", ""),
        )
        return self._fresh(deployment.pk, status.HTTP_201_CREATED)

    @extend_schema(request=DeploymentUpdateSerializer, responses={200: DeploymentSerializer})
    def partial_update(self, request, pk=None):
        deployment = self.get_object()
        params = DeploymentUpdateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        changes = {name: data[name] for name in ("name", "status", "alias") if name in data}
        if "version" in data:
            changes["version"] = model_version_or_400(deployment.model, data["version"])
        services.deployment_update(actor=request.user, deployment=deployment, **changes)
        return self._fresh(deployment.pk)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.deployment_delete(actor=request.user, deployment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=STATS_PARAMS, responses=StatsSerializer)
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        deployment = self.get_object()
        minutes = request.query_params.get("minutes", "60")
        if not minutes.isdigit() or not STATS_MINUTES[0] <= int(minutes) <= STATS_MINUTES[1]:
            raise ValidationError({"minutes": [f"Must be an integer from {STATS_MINUTES[0]} to {STATS_MINUTES[1]}."]})
        series, totals = stats.window(deployment.pk, minutes=int(minutes))
        body = {
            "window_minutes": int(minutes),
            "totals": totals.as_dict(),
            "minutes": series,
            "chart": stats.latency_chart(series, minutes=int(minutes)),
        }
        return Response(StatsSerializer(body).data)


class DeploymentKeyViewSet(
    ScopedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Predict-only keys of a deployment. POST {name} issues one (the secret is shown once); DELETE revokes."""

    model = DeploymentKey
    serializer_class = DeploymentKeySerializer
    ordering_fields = ["created_at", "name"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_deployment(self) -> Deployment:
        if not hasattr(self, "_deployment"):
            self._deployment = selectors.deployment_for_user(self.request.user, self.kwargs["deployment_pk"])
        return self._deployment

    def scoped_queryset(self):
        return selectors.deployment_keys(self.get_deployment())

    @extend_schema(request=DeploymentKeyCreateSerializer, responses={201: DeploymentKeyCreatedSerializer})
    def create(self, request, deployment_pk=None):
        deployment = self.get_deployment()  # first: another team's deployment is a 404, whatever the body
        params = DeploymentKeyCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        key, raw = services.key_create(actor=request.user, deployment=deployment, name=params.validated_data["name"])
        key.key = raw
        return Response(DeploymentKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, deployment_pk=None, pk=None):
        services.key_revoke(actor=request.user, key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _k(value):
    """`k` from JSON (an integer) or a form or query string."""
    if isinstance(value, str):
        if not value.strip().lstrip("-").isdigit():
            raise ApplicationError(f"k: must be an integer; got {value!r}.", fields={"k": ["Not an integer."]})
        return int(value)
    return value


def _json_field(value, name: str):
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise ApplicationError(f"{name}: not valid JSON ({error.msg}).", fields={name: ["Not valid JSON."]}) from None


def predict_reader(request):
    """read_inputs for the predict service: the checked batch and k, from JSON or a multipart image."""

    def read(version: ModelVersion):
        data = request.data  # parsed here, so a malformed body counts as a failed request
        if not hasattr(data, "get"):
            raise ApplicationError('The body must be a JSON object: {"inputs": [...], "k": 5}.')
        k = _k(data.get("k", request.query_params.get("k")))
        image = request.FILES.get("image")
        if image is not None:
            return image_array(image.read(), version.input_shape)[None], k
        raw = _json_field(data.get("inputs"), "inputs")
        return inputs_array(raw, version.input_shape, max_batch=services.max_batch()), k

    return read


class PredictView(StrictQueryParamsMixin, APIView):
    """Top-k classes of a batch of samples (JSON) or one image (multipart).

    Authenticate like the rest of the API, or with one of the deployment's own keys
    (`Authorization: Bearer lepd_…`), which works here and nowhere else. Inputs are raw
    values (features as in the dataset, pixels 0-255); the version's preprocessing is applied.
    Throttled per key, token or user (LEPTON_PREDICT_RATE).
    """

    authentication_classes = [DeploymentKeyAuthentication, *APIView.authentication_classes]
    permission_classes = [UserOrDeploymentKey]
    throttle_classes = [PredictThrottle]
    parser_classes = [JSONParser, MultiPartParser]

    def deployment(self, request, pk) -> Deployment:
        if isinstance(request.auth, DeploymentKey):
            if request.auth.deployment_id != int(pk):
                raise NotFound("Deployment not found.")
            return request.auth.deployment
        return selectors.deployment_to_serve(request.user, pk)

    @extend_schema(
        request={"application/json": PredictRequestSerializer, "multipart/form-data": PredictRequestSerializer},
        parameters=[OpenApiParameter("k", OpenApiTypes.INT, description="Classes per sample (or k in the body).")],
        responses={200: PredictResponseSerializer},
    )
    def post(self, request, pk):
        deployment = self.deployment(request, pk)
        return Response(services.deployment_predict(deployment=deployment, read_inputs=predict_reader(request)))
