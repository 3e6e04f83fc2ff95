"""Create the demo login, teams and quotas (idempotent: running it again changes nothing)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts.models import Membership, Role, Team
from apps.accounts.plans import quota_ensure

DEMO_TEAMS = [("demo", "Demo team"), ("research", "Research")]


class Command(BaseCommand):
    help = "Create a demo user (demo / demo) who owns two demo teams. Refused with DEBUG off unless --force."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo")
        parser.add_argument("--force", action="store_true", help="Allow it with DEBUG off (a known password!).")

    @transaction.atomic
    def handle(self, *args, username, password, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates a user with a known password; with DEBUG off pass --force.")
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com", "is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        for slug, name in DEMO_TEAMS:
            team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": name})
            Membership.objects.get_or_create(team=team, user=user, defaults={"role": Role.OWNER})
            quota_ensure(team)
        state = "Created" if created else "Kept"
        self.stdout.write(self.style.SUCCESS(f"{state} the demo user. Log in at http://127.0.0.1:8000/"))
        self.stdout.write(f"  username: {username}")
        self.stdout.write(f"  password: {password if user.check_password(password) else '(changed since)'}")
        self.stdout.write("  The demo user is also an admin: http://127.0.0.1:8000/admin/")
