"""Allowlisted filters of the experiments list (page and API)."""

import django_filters

from apps.core.api.filtering import IdFilter
from apps.experiments.models import Experiment, ExperimentStatus, Objective, Strategy, Trial, TrialStatus


class ExperimentFilter(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug")
    status = django_filters.MultipleChoiceFilter(choices=ExperimentStatus.choices)
    strategy = django_filters.ChoiceFilter(choices=Strategy.choices)
    objective = django_filters.ChoiceFilter(choices=Objective.choices)
    model = IdFilter(field_name="base_version__model_id")

    class Meta:
        model = Experiment
        fields = ["team", "status", "strategy", "objective", "model"]


class TrialFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=TrialStatus.choices)
    family = django_filters.CharFilter()
    within_target = django_filters.BooleanFilter()
    on_size_frontier = django_filters.BooleanFilter()

    class Meta:
        model = Trial
        fields = ["status", "family", "within_target", "on_size_frontier"]
