"""Operators' view of deployments and their keys (secrets are never shown: only prefixes)."""

from django.contrib import admin

from apps.deployments.models import Deployment, DeploymentKey


class DeploymentKeyInline(admin.TabularInline):
    model = DeploymentKey
    extra = 0
    fields = ["name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "model", "target", "status", "created_by", "created_at"]
    list_filter = ["status", "team"]
    search_fields = ["name", "model__name", "team__slug"]
    list_select_related = ["team", "model", "version", "created_by"]
    raw_id_fields = ["model", "version"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [DeploymentKeyInline]


@admin.register(DeploymentKey)
class DeploymentKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "deployment", "created_by", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "deployment__name"]
    list_select_related = ["deployment", "created_by"]
    readonly_fields = ["deployment", "prefix", "created_by", "created_at", "last_used_at"]
    exclude = ["key_hash"]

    def has_add_permission(self, request):
        return False  # keys are issued on the deployment page or through the API, which show the secret once
