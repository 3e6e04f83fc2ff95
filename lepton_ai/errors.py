"""Typed errors: one class per HTTP status, each carrying the API's message, code and field errors.

The API answers every failure as {"error": {"code", "message", "fields"}}; `error_from_response`
turns that into the matching class, so scripts can `except lepton_ai.NotFound:`.
"""


class LeptonError(Exception):
    """Anything the SDK could not do. `status` is the HTTP status (None when no answer came)."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str = "", fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else type(self).status
        self.code = code
        self.fields = fields or {}

    def __str__(self):
        return self.message

    def __repr__(self):
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, message={self.message!r})"


class ConnectionFailed(LeptonError):
    """The server could not be reached."""


class BadRequest(LeptonError):
    """400: the request was refused; `fields` names each input at fault."""

    status = 400


class AuthenticationError(LeptonError):
    """401: no credentials, or a token that is wrong, expired or revoked."""

    status = 401


class PermissionDenied(LeptonError):
    """403: your role in the team does not allow this."""

    status = 403


class QuotaExceeded(PermissionDenied):
    """403 with code quota_exceeded: a team limit would be passed (`fields` names the limit)."""


class NotFound(LeptonError):
    """404: no such object, or one of a team you are not in."""

    status = 404


class Conflict(LeptonError):
    """409: the request clashes with the current state (a taken name, a paused deployment, …)."""

    status = 409


class PayloadTooLarge(LeptonError):
    """413: the body or upload is over the server's limit."""

    status = 413


class Throttled(LeptonError):
    """429: too many requests; `retry_after` says how many seconds to wait."""

    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(LeptonError):
    """5xx: the server failed."""


class WorkFailed(LeptonError):
    """Background work (a job, an experiment, a dataset ingest) ended other than in success."""

    def __init__(self, message: str, *, resource=None):
        super().__init__(message)
        self.resource = resource


class JobFailed(WorkFailed):
    """A job finished failed or cancelled; `resource` is the Job, `status_reason` says why."""


class ExperimentFailed(WorkFailed):
    """An experiment finished failed or cancelled."""


class WaitTimeout(LeptonError):
    """wait() ran past its timeout; the work goes on on the server."""


BY_STATUS = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    429: Throttled,
}


def error_from_response(response) -> LeptonError:
    """The typed error for a failed `requests` response (any body: the API's shape, or text)."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    message = error.get("message") or response.text.strip()[:500] or response.reason or "request failed"
    fields = error.get("fields") or {}
    code = error.get("code", "")
    status = response.status_code
    kind = BY_STATUS.get(status, ServerError if status >= 500 else LeptonError)
    if code == "quota_exceeded":
        kind = QuotaExceeded
    if kind is Throttled:
        retry_after = response.headers.get("Retry-After")
        return Throttled(
            message, retry_after=float(retry_after) if retry_after else None, status=status, code=code, fields=fields
        )
    return kind(message, status=status, code=code, fields=fields)
