"""FilterSets of the accounts lists: the allowlist of what each list can be filtered by."""

import django_filters

from apps.accounts.models import ApiToken, Membership, Role, Team


class TeamFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    slug = django_filters.CharFilter()

    class Meta:
        model = Team
        fields = ["name", "slug"]


class MemberFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)
    username = django_filters.CharFilter(field_name="user__username", lookup_expr="icontains")

    class Meta:
        model = Membership
        fields = ["role", "username"]


class TokenFilter(django_filters.FilterSet):
    revoked = django_filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = ApiToken
        fields = ["revoked"]
