from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """Compression experiments: methods, the `compress` job kind, search strategies, frontier and charts."""

    name = "apps.experiments"
    label = "experiments"

    def ready(self):
        from apps.experiments import kinds
        from apps.experiments.compression import rebuilding  # noqa: F401 (registers the transforms)
        from apps.experiments.services import on_job_finished
        from apps.jobs.signals import job_finished

        kinds.register()
        job_finished.connect(on_job_finished, dispatch_uid="experiments-advance-on-job-finished")
