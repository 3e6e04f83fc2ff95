from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting plumbing every app may use: errors, API base, navigation."""

    name = "apps.core"
    label = "core"

    def ready(self):
        from django.urls import register_converter

        from apps.core.converters import IdConverter
        from apps.core.uploads import upload_temp_dir

        register_converter(IdConverter, "id")  # before any URLconf is imported
        upload_temp_dir()  # every upload handler (the admin's too) writes there; Django does not make it
