"""REST API of experiments: create, list, get, cancel, trials, frontier, recommended, promote, CSV."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.accounts.selectors import team_for_user
from apps.core.api.views import ScopedQuerysetMixin
from apps.core.converters import ID_REGEX
from apps.core.errors import ApplicationError, NotFound
from apps.experiments import selectors, services
from apps.experiments.filters import ExperimentFilter, TrialFilter
from apps.experiments.models import Experiment, Trial
from apps.experiments.serializers import (
    ExperimentCreateSerializer,
    ExperimentSerializer,
    PromoteSerializer,
    RecommendedSerializer,
    TrialSerializer,
)
from apps.registry.api import dataset_version_for
from apps.registry.selectors import version_for_user
from apps.registry.serializers import AliasSerializer

FRONTIER_PARAMS = [
    OpenApiParameter("measure", str, enum=["size", "latency"], description="What the frontier trades accuracy for."),
]


class ExperimentViewSet(
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Compression experiments of your teams. Filter with ?team=, ?status=, ?strategy=, ?objective=, ?model=."""

    model = Experiment
    serializer_class = ExperimentSerializer
    filterset_class = ExperimentFilter
    ordering_fields = ["created_at", "finished_at", "name", "status"]
    action_query_params = {"frontier": FRONTIER_PARAMS}

    def scoped_queryset(self):
        return selectors.experiments_for_user(self.request.user)

    def _fresh(self, pk):
        return self.scoped_queryset().get(pk=pk)

    @extend_schema(request=ExperimentCreateSerializer, responses={201: ExperimentSerializer})
    def create(self, request):
        params = ExperimentCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        base = version_for_user(request.user, data["model"], data["base_version"])
        train_version = dataset_version_for(request.user, data)
        eval_version = None
        if data.get("eval_dataset") is not None:
            eval_version = dataset_version_for(
                request.user, {"dataset": data["eval_dataset"], "dataset_version": data.get("eval_dataset_version")}
            )
        team = team_for_user(request.user, data["team"]) if data.get("team") else base.model.team
        experiment = services.experiment_create(
            actor=request.user,
            team=team,
            name=data["name"],
            description=data["description"],
            base_version=base,
            train_dataset_version=train_version,
            eval_dataset_version=eval_version,
            recipes=data["recipes"],
            **{param.name: data[param.name] for param in services.EXPERIMENT_PARAMS},
        )
        return Response(ExperimentSerializer(self._fresh(experiment.pk)).data, status=201)

    def perform_destroy(self, instance):
        services.experiment_delete(actor=self.request.user, experiment=instance)

    @extend_schema(request=None, responses=ExperimentSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        services.experiment_cancel(actor=request.user, experiment=self.get_object())
        return Response(ExperimentSerializer(self._fresh(pk)).data)

    @extend_schema(parameters=FRONTIER_PARAMS, responses=TrialSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])  # a plain list
    def frontier(self, request, pk=None):
        """The Pareto frontier (?measure=size, the default, or latency), cheapest first."""
        measure = request.query_params.get("measure", "size")
        if measure not in ("size", "latency"):
            raise ValidationError({"measure": ["Must be size or latency."]})
        trials = list(selectors.trials_of(self.get_object()))
        return Response(TrialSerializer(selectors.frontier(trials, measure), many=True).data)

    @extend_schema(responses={200: RecommendedSerializer, 404: None})
    @action(detail=True, methods=["get"])
    def recommended(self, request, pk=None):
        """The smallest (or fastest) trial within the accuracy target; 404 until there is one."""
        experiment = self.get_object()
        if experiment.recommended is None:
            reason = experiment.status_reason or f"the experiment is {experiment.status}"
            raise NotFound(f"No recommended model yet: {reason}.")
        return Response(RecommendedSerializer(experiment.recommended).data)

    @extend_schema(request=PromoteSerializer, responses=AliasSerializer)
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        """Point an alias of the base model (default "production") at a trial's version."""
        experiment = self.get_object()
        params = PromoteSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        trials = experiment.trials.select_related("version")
        if data.get("trial") is not None:
            trial = trials.filter(number=data["trial"]).first()
        elif data.get("version") is not None:
            trial = trials.filter(version__number=data["version"]).first()
        else:
            trial = experiment.recommended
        if trial is None:
            raise ApplicationError(
                "trial: no such trial (give trial or version, or wait for a recommendation).",
                fields={"trial": ["Not found."]},
            )
        alias = services.experiment_promote(actor=request.user, experiment=experiment, trial=trial, alias=data["alias"])
        return Response(AliasSerializer(alias).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)})
    @action(detail=True, methods=["get"], url_path="trials.csv")
    def trials_csv(self, request, pk=None):
        return selectors.trials_csv_download(self.get_object())


class TrialViewSet(ScopedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Trials of an experiment with their measured figures. Sort with ?ordering=artifact_bytes, -accuracy, ..."""

    model = Trial
    serializer_class = TrialSerializer
    filterset_class = TrialFilter
    ordering_fields = [
        "number",
        "accuracy",
        "artifact_bytes",
        "parameter_count",
        "nonzero_parameters",
        "flops_per_sample",
        "latency_ms",
        "finished_at",
    ]
    lookup_field = "number"
    lookup_value_regex = ID_REGEX

    def scoped_queryset(self):
        experiment = selectors.experiment_for_user(self.request.user, self.kwargs["experiment_pk"])
        return selectors.trials_of(experiment)
