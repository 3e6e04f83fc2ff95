"""Predict-only deployment keys (`Authorization: Bearer lepd_…`) and the per-key throttle."""

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions, throttling

from apps.accounts.tokens import hash_token
from apps.core.errors import AuthenticationFailed
from apps.deployments.models import DeploymentKey
from apps.deployments.services import KEY_PREFIX, key_authenticate


class DeploymentKeyAuthentication(authentication.BaseAuthentication):
    """A deployment key: no user, `request.auth` is the key. Other bearer tokens are left to the next class."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != b"bearer" or not header[1].startswith(KEY_PREFIX.encode()):
            return None
        try:
            return AnonymousUser(), key_authenticate(header[1].decode())
        except (AuthenticationFailed, UnicodeDecodeError) as error:
            raise exceptions.AuthenticationFailed(getattr(error, "message", "Invalid deployment key.")) from None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class UserOrDeploymentKey(permissions.BasePermission):
    """A signed-in user (session or API token), or a deployment key (which deployment: checked by the view)."""

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated) or isinstance(request.auth, DeploymentKey)


class PredictThrottle(throttling.SimpleRateThrottle):
    """LEPTON_PREDICT_RATE requests per deployment key, API token or signed-in user."""

    scope = "predict"

    def get_rate(self):
        return settings.LEPTON_PREDICT_RATE

    def get_cache_key(self, request, view):
        if isinstance(request.auth, DeploymentKey):
            ident = f"key:{request.auth.pk}"
        elif isinstance(request.auth, str):  # an API token (its hash: the secret never goes to the cache)
            ident = f"token:{hash_token(request.auth)}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"anonymous:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
