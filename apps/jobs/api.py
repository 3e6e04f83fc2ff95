"""REST API of jobs: submit, list, get, cancel, retry, metrics, logs (tail with ?after=<id>)."""

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import team_for_user
from apps.core.api.views import ScopedQuerysetMixin, StrictQueryParamsMixin
from apps.jobs import kinds, selectors, services
from apps.jobs.filters import JobFilter
from apps.jobs.kinds import kind_handler
from apps.jobs.models import Job, JobEpoch, JobRank
from apps.jobs.serializers import (
    JobDetailSerializer,
    JobEpochSerializer,
    JobKindListSerializer,
    JobLogLineSerializer,
    JobSerializer,
    JobSubmitSerializer,
)

LOG_PARAMS = [OpenApiParameter("after", int, description="Only lines with an id above this (tailing).")]


class JobViewSet(ScopedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Jobs of your teams. Filter with ?team=, ?status= (repeatable), ?kind=, ?submitted_by=."""

    model = Job
    filterset_class = JobFilter
    ordering_fields = ["created_at", "started_at", "finished_at", "priority", "status"]
    action_query_params = {"logs": LOG_PARAMS}

    def scoped_queryset(self):
        jobs = selectors.jobs_for_user(self.request.user)
        if self.action != "list":
            jobs = jobs.prefetch_related(
                Prefetch("epochs", queryset=JobEpoch.objects.order_by("epoch")),
                Prefetch("ranks", queryset=JobRank.objects.select_related("node").order_by("rank")),
            )
        return jobs

    def get_serializer_class(self):
        return JobSerializer if self.action == "list" else JobDetailSerializer

    @extend_schema(request=JobSubmitSerializer, responses={201: JobDetailSerializer})
    def create(self, request):
        params = JobSubmitSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        _check_spec(data["kind"], data["spec"])
        job = services.job_submit(
            actor=request.user,
            team=team_for_user(request.user, data["team"]),
            kind=data["kind"],
            spec=data["spec"],
            priority=data["priority"],
            gpus=data["gpus"],
            pool=data["pool"],
            gpu_model=data["gpu_model"],
            min_gpu_memory_bytes=data.get("min_gpu_memory_bytes"),
            nodes=data["nodes"],
            max_attempts=data.get("max_attempts"),
            time_limit_seconds=data.get("time_limit_seconds"),
        )
        return Response(JobDetailSerializer(self.scoped_queryset().get(pk=job.pk)).data, status=201)

    @extend_schema(request=None, responses=JobDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        services.job_cancel(actor=request.user, job=self.get_object())
        return Response(JobDetailSerializer(self.scoped_queryset().get(pk=pk)).data)

    @extend_schema(request=None, responses=JobDetailSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        services.job_retry(actor=request.user, job=self.get_object())
        return Response(JobDetailSerializer(self.scoped_queryset().get(pk=pk)).data)

    # Plain lists, as answered and documented: no page, no list filters (they belong to the job list).
    @extend_schema(responses=JobEpochSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def metrics(self, request, pk=None):
        return Response(JobEpochSerializer(selectors.job_epochs(self.get_object()), many=True).data)

    @extend_schema(parameters=LOG_PARAMS, responses=JobLogLineSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def logs(self, request, pk=None):
        try:
            after = int(request.query_params.get("after", 0))
        except ValueError:
            raise ValidationError({"after": ["Must be an integer (the id of the last line you saw)."]}) from None
        return Response(JobLogLineSerializer(selectors.job_log_after(self.get_object(), after), many=True).data)


def _check_spec(kind: str, spec) -> None:
    """The spec through its kind's derived serializer: errors named "spec.<field>" like the service's."""
    handler = kind_handler(kind)
    if handler.submittable:
        checked = handler.spec_serializer(data=spec)
        if not checked.is_valid():
            raise ValidationError({"spec": checked.errors})


class JobKindListView(StrictQueryParamsMixin, APIView):
    """Every job kind with its declared parameters: types, ranges, defaults and help."""

    @extend_schema(responses=JobKindListSerializer)
    def get(self, request):
        described = [kinds.KINDS[name].describe_params() for name in sorted(kinds.KINDS)]
        return Response(JobKindListSerializer({"results": described}).data)
