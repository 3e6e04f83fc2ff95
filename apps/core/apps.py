from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting plumbing every app may use: errors, API base, navigation."""

    name = "apps.core"
    label = "core"

    def ready(self):
        from apps.core.uploads import upload_temp_dir

        upload_temp_dir()  # every upload handler (the admin's too) writes there; Django does not make it
