from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """Deployments: a model version (or an alias) behind a predict endpoint, with keys and request stats."""

    name = "apps.deployments"
    label = "deployments"

    def ready(self):
        from apps.deployments import schema  # noqa: F401  (registers the OpenAPI auth scheme)
