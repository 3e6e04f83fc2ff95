"""What the workers run for deployments."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.deployments import stats


def prune_request_stats() -> int:
    """Daily: forget request statistics older than LEPTON_DEPLOYMENT_STATS_DAYS."""
    return stats.prune(timezone.now() - timedelta(days=settings.LEPTON_DEPLOYMENT_STATS_DAYS))
