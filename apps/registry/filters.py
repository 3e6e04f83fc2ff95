"""Allowlisted filters of the registry lists."""

import django_filters

from apps.datasets.models import Task
from apps.registry.models import Model, ModelVersion, VersionSource


class ModelFilter(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug")
    name = django_filters.CharFilter(lookup_expr="icontains")
    task = django_filters.ChoiceFilter(choices=Task.choices)

    class Meta:
        model = Model
        fields = ["team", "name", "task"]


class VersionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ModelVersion.Status.choices)
    source = django_filters.ChoiceFilter(choices=VersionSource.choices)

    class Meta:
        model = ModelVersion
        fields = ["status", "source"]
