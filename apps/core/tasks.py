"""What workers run for core: the periodic cleanup."""

from apps.core.cleanup import cleanup_run


def run_cleanup() -> dict[str, int]:
    return cleanup_run()
