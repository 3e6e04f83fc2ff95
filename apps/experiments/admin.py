"""Operators' view of experiments and their trials (read-only: experiments start from the pages or the API)."""

from django.contrib import admin

from apps.experiments.models import Experiment, Trial


class TrialInline(admin.TabularInline):
    model = Trial
    fields = ["number", "label", "status", "job", "version", "accuracy", "artifact_bytes", "latency_ms"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["pk", "name", "team", "strategy", "objective", "status", "budget", "created_at", "finished_at"]
    list_filter = ["status", "strategy", "objective"]
    list_select_related = ["team"]
    search_fields = ["name", "team__slug"]
    readonly_fields = [f.name for f in Experiment._meta.fields]
    inlines = [TrialInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("team", "base_version__model", "recommended")

    def has_add_permission(self, request):
        return False
