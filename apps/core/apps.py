from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting plumbing every app may use: errors, API base, navigation."""

    name = "apps.core"
    label = "core"

    def ready(self):
        from django.urls import register_converter

        from apps.core.converters import IdConverter

        register_converter(IdConverter, "id")  # before any URLconf is imported
