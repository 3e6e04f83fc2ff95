"""API fields of rows a job makes (dataset versions, imported versions, evaluations, exports).

The row keeps only its result and `produced_by_job`; `job`, `progress` and `progress_message`
come from that job (apps.core.work), looked up once for a whole list by `WorkListSerializer`.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.work import attach_states, work_of


class WorkStateSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="job_id")
    kind = serializers.CharField()
    status = serializers.CharField()
    status_reason = serializers.CharField()
    node = serializers.CharField(allow_null=True)
    attempts = serializers.IntegerField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)


class WorkListSerializer(serializers.ListSerializer):
    """Looks up the jobs of every row of the list in one query before serializing them."""

    def to_representation(self, data):
        rows = list(data.all() if hasattr(data, "all") else data)
        attach_states(row for row in rows if not hasattr(row, "work"))
        return super().to_representation(rows)


class WorkFieldsMixin(serializers.Serializer):
    """`job` (its state), `progress` and `progress_message` of the job that makes the row."""

    job = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    progress_message = serializers.SerializerMethodField()

    WORK_FIELDS = ["job", "progress", "progress_message"]

    @extend_schema_field(WorkStateSerializer(allow_null=True))
    def get_job(self, row) -> dict | None:
        state = work_of(row)
        return WorkStateSerializer(state).data if state else None

    def get_progress(self, row) -> float:
        if row.status != "processing":
            return 1.0 if row.status == "ready" else 0.0
        state = work_of(row)
        return state.progress if state else 0.0

    def get_progress_message(self, row) -> str:
        if row.status != "processing":
            return row.status
        state = work_of(row)
        if state is None:
            return "waiting for a worker"
        return state.step or state.status_reason or state.status
