"""`manage.py cleanup`: the periodic cleanup, now (what the hourly django-q schedule runs)."""

from django.core.management.base import BaseCommand

from apps.core.cleanup import cleanup_run


class Command(BaseCommand):
    help = "Remove stale temp files (killed uploads, scratch files) and expired job checkpoints."

    def handle(self, *args, **options):
        for name, count in cleanup_run().items():
            self.stdout.write(f"{name}: {count} removed")
