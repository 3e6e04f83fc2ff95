"""Filtering and ordering with an allowlist, and no query parameter a view does not read.

DRF's stock backends ignore what they do not know, so `?ordering=owner__password`
or `?owner__password__startswith=a` would either leak through a relation or be
dropped silently. Here every list names its filters (a FilterSet) and its
`ordering_fields`; every other GET names what it reads (`StrictQueryParamsMixin`);
any other query parameter answers 400 with the allowed names.
"""

from collections.abc import Iterable

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

from apps.core.converters import MAX_ID

PAGINATION_PARAMS = frozenset({"page", "page_size"})


def _is_list_request(view) -> bool:
    lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", "pk")
    return lookup not in getattr(view, "kwargs", {})


def refuse_unknown_query_params(request, allowed: Iterable[str]) -> None:
    """400 naming each query parameter not in `allowed` (and what is allowed instead)."""
    allowed = set(allowed)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        hint = f"Allowed: {', '.join(sorted(allowed))}." if allowed else "This endpoint takes no query parameters."
        raise ValidationError({name: [f"Unknown query parameter. {hint}"] for name in unknown})


def list_query_params(view) -> set[str]:
    """What a list view reads: its FilterSet's filters, `ordering`, the page and any `extra_query_params`."""
    filterset_class = getattr(view, "filterset_class", None)
    filters = set(filterset_class.base_filters) if filterset_class else set()
    ordering = {StrictOrderingFilter.ordering_param} if getattr(view, "ordering_fields", None) else set()
    return filters | ordering | PAGINATION_PARAMS | set(getattr(view, "extra_query_params", ()))


class IdFilter(django_filters.NumberFilter):
    """`?model=<id>`: a positive integer a database column holds (NumberFilter took any decimal, 1e217 too: a 500)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter that refuses query parameters it was not told about."""

    def filter_queryset(self, request, queryset, view):
        if _is_list_request(view):
            refuse_unknown_query_params(request, list_query_params(view))
        return super().filter_queryset(request, queryset, view)


class StrictOrderingFilter(OrderingFilter):
    """`?ordering=a,-b` limited to the view's explicit `ordering_fields`."""

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if not raw:
            return self.get_default_ordering(view)
        allowed = list(getattr(view, "ordering_fields", None) or [])
        if allowed == ["__all__"] or allowed == "__all__":
            raise AssertionError(f"{type(view).__name__}: ordering_fields must be an explicit list")
        terms = [term.strip() for term in raw.split(",") if term.strip()]
        # One optional "-" only: "--name" would pass a strip of every "-" and crash order_by.
        bad = [term for term in terms if term.removeprefix("-") not in allowed]
        if bad:
            raise ValidationError(
                {self.ordering_param: [f"Cannot order by {', '.join(bad)}. Allowed: {', '.join(allowed)}."]}
            )
        return terms
