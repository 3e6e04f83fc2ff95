"""Personal API tokens: issue, authenticate, revoke.

A token is `lep_` + 43 URL-safe characters (256 random bits). The database keeps only
its SHA-256: with that much entropy a plain hash cannot be brute-forced, and the
lookup by hash needs no per-row comparison. The first 12 characters are kept in the
clear so people can tell their tokens apart.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from apps.accounts.lockout import LoginLockedOut, lockout_message
from apps.accounts.models import ApiToken
from apps.core.errors import ApplicationError, AuthenticationFailed, NotFound

TOKEN_PREFIX = "lep_"  # noqa: S105 (a public marker, not a secret)
DISPLAY_PREFIX_LENGTH = 12
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _validate(name: str, expires_at: datetime | None) -> str:
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A token needs a name.", fields={"name": ["This field is required."]})
    if len(name) > 100:
        raise ApplicationError("A token name has at most 100 characters.", fields={"name": ["Too long."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("The expiry must be in the future.", fields={"expires_at": ["Must be in the future."]})
    return name


@transaction.atomic
def token_create(*, user, name: str, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token for `user`. Returns the row and the secret, which is never stored."""
    name = _validate(name, expires_at)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=raw[:DISPLAY_PREFIX_LENGTH], key_hash=hash_token(raw), expires_at=expires_at
    )
    return token, raw


def token_create_with_password(
    *, request, username: str, password: str, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """What `POST /api/v1/auth/tokens/` does for a script that only has a password.

    `request` lets the login lockout count this try like one on the login page: otherwise the
    API would be a way round it. django-axes fills `lockout` when it refused the try unchecked.
    """
    lockout: dict = {}
    user = authenticate(request, username=username, password=password, response_context=lockout)
    if "error" in lockout:
        raise LoginLockedOut(lockout_message())
    if user is None:
        raise AuthenticationFailed("Invalid username or password.")
    return token_create(user=user, name=name, expires_at=expires_at)


def token_authenticate(raw: str):
    """The active user behind a token, or `AuthenticationFailed` saying why not.

    Checked on every request, so a revoked or expired token fails on the very next one.
    """
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
    if token is None:
        raise AuthenticationFailed("Invalid token.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise AuthenticationFailed("This token has been revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthenticationFailed("This token has expired.")
    if not token.user.is_active:
        raise AuthenticationFailed("This token's user is inactive.")
    # One conditional write a minute at most, not one per request.
    ApiToken.objects.filter(pk=token.pk).exclude(last_used_at__gt=now - LAST_USED_RESOLUTION).update(last_used_at=now)
    return token.user


def token_revoke(*, actor, token: ApiToken) -> ApiToken:
    """Revoke one of the actor's own tokens (revoking twice keeps the first time)."""
    if token.user_id != actor.pk:
        raise NotFound("Token not found.")
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    return token
