"""What a client locked out by django-axes is told, on the login page and by the token API.

django-axes (settings: AXES_*) counts failed logins per username and per address and refuses
further tries for AXES_COOLOFF_TIME once either reaches AXES_FAILURE_LIMIT. This module only
words that refusal, so the page and the API say the same thing.
"""

from django.conf import settings

from apps.core.errors import ApplicationError


class LoginLockedOut(ApplicationError):
    """Too many failed logins for this username or from this address; wait for the cool-off."""

    code = "locked_out"
    status_code = 429


def lockout_minutes() -> int:
    return max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_message() -> str:
    minutes = lockout_minutes()
    return (
        f"Too many failed logins for this username or from this address. "
        f"Logging in is refused for {minutes} minute{'s' if minutes != 1 else ''}; try again after that."
    )
