from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The landing page: one team's overview, built from the other apps' selectors."""

    name = "apps.dashboard"
    label = "dashboard"
