"""Operators' view of nodes: inventory, heartbeats, drain and undrain."""

from django.contrib import admin, messages
from django.utils import timezone

from apps.nodes.models import Gpu, Node
from apps.nodes.services import node_drain, node_undrain


class GpuInline(admin.TabularInline):
    model = Gpu
    extra = 0
    readonly_fields = [
        "index",
        "model_name",
        "memory_total_bytes",
        "memory_used_bytes",
        "utilization",
        "temperature_c",
        "updated_at",
    ]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["name", "pool", "status", "status_reason", "heartbeat_age", "gpu_count", "worker_slots"]
    list_filter = ["status", "pool"]
    search_fields = ["name", "hostname"]
    readonly_fields = [
        "hostname",
        "last_heartbeat_at",
        "started_at",
        "cpu_count",
        "memory_bytes",
        "torch_version",
        "cuda_version",
    ]
    inlines = [GpuInline]
    actions = ["drain", "undrain"]

    @admin.display(description="Heartbeat")
    def heartbeat_age(self, node):
        if node.last_heartbeat_at is None:
            return "never"
        return f"{(timezone.now() - node.last_heartbeat_at).total_seconds():.0f} s ago"

    @admin.display(description="GPUs")
    def gpu_count(self, node):
        return node.gpus.count()

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("gpus")

    @admin.action(description="Drain: finish running jobs, place nothing new")
    def drain(self, request, queryset):
        for node in queryset.exclude(status=Node.Status.OFFLINE):
            node_drain(actor=request.user, node=node)
        self.message_user(request, "Drained.", messages.SUCCESS)

    @admin.action(description="Undrain: take jobs again")
    def undrain(self, request, queryset):
        for node in queryset:
            node_undrain(actor=request.user, node=node)
        self.message_user(request, "Undrained.", messages.SUCCESS)
