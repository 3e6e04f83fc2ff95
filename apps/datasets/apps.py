from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    """Datasets and versions: upload, validate, convert, preview and load for torch."""

    name = "apps.datasets"
    label = "datasets"

    def ready(self):
        from apps.core.work import work_ended, work_retrying
        from apps.datasets.services import versions_end_with_job, versions_reopen_with_job

        work_ended.connect(versions_end_with_job, dispatch_uid="datasets-versions-end-with-job")
        work_retrying.connect(versions_reopen_with_job, dispatch_uid="datasets-versions-reopen-with-job")
