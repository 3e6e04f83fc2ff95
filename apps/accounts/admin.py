"""Operators' admin: plans, team quotas (usage beside each limit), teams, tokens, ledger."""

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count

from apps.accounts import quotas
from apps.accounts.models import QUOTA_LIMITS, ApiToken, Membership, Plan, Team, TeamQuota, UsageRecord
from apps.accounts.plans import plan_save, quota_clear_overrides, quota_ensure, quota_move_to_plan
from apps.accounts.tokens import token_revoke
from apps.core.units import format_bytes, format_number


def _limit_text(name: str, value: float) -> str:
    return format_bytes(value) if name == "storage_bytes" else format_number(value)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_default", *QUOTA_LIMITS[:3], "storage", "team_count"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(team_count=Count("quotas"))

    @admin.display(description="Storage", ordering="storage_bytes")
    def storage(self, plan):
        return format_bytes(plan.storage_bytes)

    @admin.display(description="Teams", ordering="team_count")
    def team_count(self, plan):
        return plan.team_count

    def save_model(self, request, obj, form, change):
        plan_save(obj)


class UsageChangeList(ChangeList):
    """Fetches the usage of every quota on the page in one batch (no query per row)."""

    def get_results(self, request):
        super().get_results(request)
        usage = quotas.teams_usage([quota.team_id for quota in self.result_list])
        for quota in self.result_list:
            quota.usage = usage[quota.team_id]


def _usage_column(name: str):
    def column(self, quota):
        used = quota.usage.against(name) if hasattr(quota, "usage") else None
        line = quotas.QuotaLine(name, quotas.LIMIT_LABELS[name], used or 0, quota.limit(name))
        marker = " (override)" if getattr(quota, name) is not None else ""
        return f"{line.display}{marker}"

    column.short_description = quotas.LIMIT_LABELS[name]
    column.__name__ = f"{name}_usage"
    return column


@admin.register(TeamQuota)
class TeamQuotaAdmin(admin.ModelAdmin):
    """A team's plan and its overrides; each limit is shown beside what the team uses now."""

    list_display = ["team", "plan", *[f"{name}_usage" for name in QUOTA_LIMITS]]
    list_filter = ["plan"]
    list_select_related = ["team", "plan"]
    search_fields = ["team__name", "team__slug"]
    readonly_fields = ["team", "usage_now"]
    fieldsets = [
        (None, {"fields": ["team", "plan", "usage_now"]}),
        (
            "Overrides (blank = the plan's limit)",
            {"fields": list(QUOTA_LIMITS), "description": "Set a value to override one limit for this team only."},
        ),
        (
            "Node pools",
            {
                "fields": ["allowed_pools"],
                "description": "Limit the team to some node pools: its jobs are placed only there, and a job "
                "naming another pool is refused at submission.",
            },
        ),
    ]
    actions = ["clear_overrides"]

    def get_changelist(self, request, **kwargs):
        return UsageChangeList

    def has_add_permission(self, request):
        return False  # every team gets its quota when it is created

    @admin.display(description="Usage now")
    def usage_now(self, quota):
        lines = quotas.quota_lines(quota, quotas.team_usage(quota.team))
        return " · ".join(f"{line.label}: {line.display}" for line in lines)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None:
            usage = quotas.team_usage(obj.team)
            for name in QUOTA_LIMITS:
                plan_limit = _limit_text(name, getattr(obj.plan, name))
                used = _limit_text(name, usage.against(name))
                form.base_fields[name].help_text = f"Plan {obj.plan.name}: {plan_limit} · used now: {used}"
        return form

    def get_actions(self, request):
        actions = super().get_actions(request)
        for plan in Plan.objects.all():
            actions[f"move_to_plan_{plan.pk}"] = (
                _move_to_plan_action(plan),
                f"move_to_plan_{plan.pk}",
                f"Move to plan: {plan.name} (keeps overrides)",
            )
        return actions

    @admin.action(description="Clear overrides (use the plan's limits)")
    def clear_overrides(self, request, queryset):
        count = quota_clear_overrides(queryset)
        self.message_user(request, f"Cleared the overrides of {count} team(s).", messages.SUCCESS)


for _name in QUOTA_LIMITS:
    setattr(TeamQuotaAdmin, f"{_name}_usage", _usage_column(_name))


def _move_to_plan_action(plan: Plan):
    def action(modeladmin, request, queryset):
        count = quota_move_to_plan(queryset, plan)
        modeladmin.message_user(request, f"Moved {count} team(s) to {plan.name}.", messages.SUCCESS)

    return action


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "member_count", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("quota__plan").annotate(member_count=Count("memberships"))

    @admin.display(description="Plan", ordering="quota__plan__name")
    def plan(self, team):
        return team.quota.plan.name if hasattr(team, "quota") else "—"

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, team):
        return team.member_count

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        quota_ensure(obj)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # a token's secret is shown once, to its owner, on the tokens page

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True).select_related("user"):
            token_revoke(actor=token.user, token=token)
        self.message_user(request, "Revoked.", messages.SUCCESS)


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ["created_at", "team", "kind", "amount", "source"]
    list_filter = ["kind"]
    list_select_related = ["team"]
    search_fields = ["team__slug", "source"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
