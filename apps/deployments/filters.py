"""Allowlisted filters of the deployments list (page and API)."""

import django_filters

from apps.core.api.filtering import IdFilter
from apps.deployments.models import Deployment


class DeploymentFilter(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug")
    name = django_filters.CharFilter(lookup_expr="icontains")
    status = django_filters.ChoiceFilter(choices=Deployment.Status.choices)
    model = IdFilter(field_name="model_id")

    class Meta:
        model = Deployment
        fields = ["team", "name", "status", "model"]
