"""Domain errors raised by services.

Services raise these; the API maps them to the one error shape
(`apps.core.api.errors`) and HTML views turn them into a flash message. Nothing in a
service knows about HTTP beyond the status each error class suggests.
"""


class ApplicationError(Exception):
    """A rule of the domain refused the request. `fields` names the inputs at fault."""

    code = "invalid"
    status_code = 400

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class NotFound(ApplicationError):
    """The object does not exist or belongs to a team the caller is not in."""

    code = "not_found"
    status_code = 404


class PermissionDenied(ApplicationError):
    """The caller is in the team but their role does not allow this."""

    code = "permission_denied"
    status_code = 403


class Conflict(ApplicationError):
    """The request clashes with the current state (a duplicate, a last owner, …)."""

    code = "conflict"
    status_code = 409


class QuotaExceeded(ApplicationError):
    """A team limit would be passed. `limit` is the quota field that refused it."""

    code = "quota_exceeded"
    status_code = 403

    def __init__(self, message: str, *, limit: str):
        super().__init__(message, fields={limit: [message]})  # the limit's name, for scripts
        self.limit = limit


class AuthenticationFailed(ApplicationError):
    """Credentials were given but are wrong, expired or revoked."""

    code = "authentication_failed"
    status_code = 401
