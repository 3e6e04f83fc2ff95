"""Serializer fields shared by every app's API."""

from rest_framework import serializers

from apps.core.converters import MAX_ID


class IdField(serializers.IntegerField):
    """The id (or number) of a row: a positive integer a database column holds.

    Without the bound a 20-digit id reached the lookup and SQLite's driver raised OverflowError (a 500).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class OptionalEmailField(serializers.EmailField):
    """A user's email for output: null when they have none (Django stores ""), never a blank `format: email`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return value or None
