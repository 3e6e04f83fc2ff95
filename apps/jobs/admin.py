"""Operators' view of jobs and of the GPU allocations (which job holds which GPU)."""

from django.contrib import admin

from apps.jobs.models import GpuLease, Job


@admin.register(GpuLease)
class GpuLeaseAdmin(admin.ModelAdmin):
    """The current allocations. Rows come and go with placement and release; operators only look."""

    list_display = ["gpu", "job", "team", "created_at"]
    list_select_related = ["gpu__node", "job__team"]
    list_filter = ["gpu__node"]

    @admin.display(description="Team")
    def team(self, lease):
        return lease.job.team

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["pk", "team", "kind", "status", "gpus", "node", "attempts", "created_at", "finished_at"]
    list_filter = ["status", "kind", "node"]
    list_select_related = ["team", "node"]
    search_fields = ["pk", "team__slug", "status_reason"]
    readonly_fields = [f.name for f in Job._meta.fields]

    def has_add_permission(self, request):
        return False  # jobs are submitted through the API or the pages, where quotas apply
