from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Teams, memberships and roles, API tokens, plans, quotas and the usage ledger."""

    name = "apps.accounts"
    label = "accounts"

    def ready(self):
        from apps.accounts import schema  # noqa: F401  (registers the OpenAPI auth scheme)
