from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """The model registry: architectures, versions with lineage, safe weights, measurements, exports."""

    name = "apps.registry"
    label = "registry"
