"""API shapes of tokens, teams, members and quotas (no rules here: see services)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import QUOTA_LIMITS, ApiToken, Membership, Role, Team, UsageRecord
from apps.accounts.quotas import quota_lines, team_quota, team_usage
from apps.core.api.fields import OptionalEmailField


class TokenSerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at", "is_active"]
        read_only_fields = fields


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret. Shown once; store it now.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    name = serializers.CharField(max_length=100, default="API token")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    email = OptionalEmailField(source="user.email")
    joined_at = serializers.DateTimeField(source="accepted_at", read_only=True, allow_null=True)
    invited = serializers.BooleanField(source="is_pending", read_only=True, help_text="Invited, not accepted yet.")

    class Meta:
        model = Membership
        fields = ["username", "email", "role", "invited", "joined_at"]
        read_only_fields = fields


class InvitationSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    team_name = serializers.CharField(source="team.name", read_only=True)
    invited_by = serializers.CharField(source="invited_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Membership
        fields = ["id", "team", "team_name", "role", "invited_by", "created_at"]
        read_only_fields = fields


class MemberCreateSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="Username or email of an existing user.")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class MemberUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class PlanRefSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()


class QuotaLineSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=QUOTA_LIMITS)
    label = serializers.CharField()
    used = serializers.FloatField()
    limit = serializers.IntegerField()
    display = serializers.CharField(help_text='e.g. "3.2 GiB of 10.0 GiB"')


class QuotaSerializer(serializers.Serializer):
    plan = PlanRefSerializer()
    overridden = serializers.ListField(child=serializers.ChoiceField(choices=QUOTA_LIMITS))
    lines = QuotaLineSerializer(many=True)


def quota_summary(team: Team) -> dict:
    quota = team_quota(team)
    return {
        "plan": {"slug": quota.plan.slug, "name": quota.plan.name},
        "overridden": [name for name in QUOTA_LIMITS if getattr(quota, name) is not None],
        "lines": [
            {"name": line.name, "label": line.label, "used": line.used, "limit": line.limit, "display": line.display}
            for line in quota_lines(quota, team_usage(team))
        ],
    }


class TeamSerializer(serializers.ModelSerializer):
    role = serializers.CharField(source="my_role", read_only=True, help_text="Your role in this team.")

    class Meta:
        model = Team
        fields = ["slug", "name", "role", "created_at"]
        read_only_fields = ["role", "created_at"]


class TeamDetailSerializer(TeamSerializer):
    members = MemberSerializer(source="memberships", many=True, read_only=True)
    quota = serializers.SerializerMethodField()

    class Meta(TeamSerializer.Meta):
        fields = [*TeamSerializer.Meta.fields, "members", "quota"]
        read_only_fields = fields

    @extend_schema_field(QuotaSerializer)
    def get_quota(self, team) -> dict:
        return quota_summary(team)


class TeamCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    slug = serializers.SlugField(max_length=50, required=False, allow_blank=True)


class TeamUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = OptionalEmailField()
    teams = TeamSerializer(many=True)


class UsageRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = UsageRecord
        fields = ["kind", "amount", "source", "created_at"]
        read_only_fields = fields
