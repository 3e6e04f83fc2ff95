"""What the workers run for experiments."""

from apps.experiments import services


def reconcile_experiments() -> int:
    return services.experiments_reconcile()
