from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    """Datasets and versions: upload, validate, convert, preview and load for torch."""

    name = "apps.datasets"
    label = "datasets"
