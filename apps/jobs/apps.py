from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Jobs: the state machine, submission, placement, the runner, progress, logs and checkpoints."""

    name = "apps.jobs"
    label = "jobs"

    def ready(self):
        from apps.jobs.kinds import evaluate, train

        train.register()
        evaluate.register()
