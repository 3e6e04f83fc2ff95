from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Teams, memberships and roles, API tokens, plans, quotas and the usage ledger."""

    name = "apps.accounts"
    label = "accounts"

    def ready(self):
        from apps.accounts import schema, signals  # noqa: F401  (the OpenAPI auth scheme; the quota row of a new team)
