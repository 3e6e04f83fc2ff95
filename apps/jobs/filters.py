"""Allowlisted filters of the jobs list (page and API)."""

import django_filters

from apps.jobs.models import Job, JobKind, JobStatus


class JobFilter(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug")
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices)
    kind = django_filters.ChoiceFilter(choices=JobKind.choices)
    submitted_by = django_filters.CharFilter(field_name="submitted_by__username")

    class Meta:
        model = Job
        fields = ["team", "status", "kind", "submitted_by"]
