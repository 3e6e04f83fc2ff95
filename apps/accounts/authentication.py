"""DRF authentication by `Authorization: Bearer <token>`."""

from rest_framework import authentication, exceptions

from apps.accounts.tokens import token_authenticate
from apps.core.errors import AuthenticationFailed


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        try:
            return token_authenticate(raw), raw
        except AuthenticationFailed as error:
            raise exceptions.AuthenticationFailed(error.message) from None

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'
