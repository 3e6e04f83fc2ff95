from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """The model registry: architectures, versions with lineage, safe weights, measurements, exports."""

    name = "apps.registry"
    label = "registry"

    def ready(self):
        from apps.core.work import work_ended, work_retrying
        from apps.registry.services import results_end_with_job, results_reopen_with_job

        work_ended.connect(results_end_with_job, dispatch_uid="registry-results-end-with-job")
        work_retrying.connect(results_reopen_with_job, dispatch_uid="registry-results-reopen-with-job")
