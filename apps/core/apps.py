from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting plumbing every app may use: errors, API base, navigation."""

    name = "apps.core"
    label = "core"
