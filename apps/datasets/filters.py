"""Allowlisted filters of the dataset lists (the API and the list page share them)."""

import django_filters

from apps.datasets.models import Dataset, DatasetVersion, Task


class DatasetFilter(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug")
    name = django_filters.CharFilter(lookup_expr="icontains")
    task = django_filters.ChoiceFilter(choices=Task.choices)

    class Meta:
        model = Dataset
        fields = ["team", "name", "task"]


class VersionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=DatasetVersion.Status.choices)

    class Meta:
        model = DatasetVersion
        fields = ["status"]
