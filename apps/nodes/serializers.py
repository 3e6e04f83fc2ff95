"""API shapes of nodes (shared infrastructure: other teams' jobs are counted, not named)."""

from rest_framework import serializers


class GpuSerializer(serializers.Serializer):
    index = serializers.IntegerField(source="gpu.index")
    model_name = serializers.CharField(source="gpu.model_name")
    memory_total_bytes = serializers.IntegerField(source="gpu.memory_total_bytes")
    memory_used_bytes = serializers.IntegerField(source="gpu.memory_used_bytes")
    utilization = serializers.FloatField(source="gpu.utilization", allow_null=True)
    temperature_c = serializers.FloatField(source="gpu.temperature_c", allow_null=True)
    held = serializers.BooleanField()
    job = serializers.IntegerField(source="job_id", allow_null=True, help_text="Your team's job holding it.")


class NodeSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="node.pk")
    name = serializers.CharField(source="node.name")
    pool = serializers.CharField(source="node.pool")
    status = serializers.CharField(source="node.status")
    status_reason = serializers.CharField(source="node.status_reason")
    hostname = serializers.CharField(source="node.hostname")
    last_heartbeat_at = serializers.DateTimeField(source="node.last_heartbeat_at", allow_null=True)
    heartbeat_age_seconds = serializers.FloatField(allow_null=True)
    cpu_count = serializers.IntegerField(source="node.cpu_count")
    memory_bytes = serializers.IntegerField(source="node.memory_bytes")
    worker_slots = serializers.IntegerField(source="node.worker_slots")
    torch_version = serializers.CharField(source="node.torch_version")
    cuda_version = serializers.CharField(source="node.cuda_version")
    gpus = GpuSerializer(many=True)
    free_gpus = serializers.IntegerField()
    running_jobs = serializers.IntegerField()
    my_jobs = serializers.ListField(child=serializers.IntegerField(), help_text="Your teams' jobs on this node.")
