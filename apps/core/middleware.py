"""Request-wide guards."""

from django.conf import settings
from django.http import HttpResponse

from apps.core.api.errors import error_response
from apps.core.units import format_bytes


def accepts_uploads(view):
    """Mark a view (function or class) as one that takes large uploads (it limits them itself)."""
    view.accepts_uploads = True
    return view


def _takes_uploads(view_func) -> bool:
    view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
    return getattr(view_func, "accepts_uploads", False) or getattr(view_class, "accepts_uploads", False)


class RequestSizeLimitMiddleware:
    """Refuse a body over the limit before anything reads it.

    Views that take uploads limit themselves (LEPTON_MAX_UPLOAD_BYTES, through the limited
    upload handler); every other request gets LEPTON_MAX_REQUEST_BYTES, which also bounds
    what DRF's JSON parser reads into memory. Django never reads past Content-Length, so the
    declared length is the whole story.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if _takes_uploads(view_func):
            return None  # its own upload handler refuses by length, and while streaming, with the field named
        limit = settings.LEPTON_MAX_REQUEST_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length <= limit:
            return None
        message = f"The request body is {format_bytes(length)}; the limit here is {format_bytes(limit)}."
        if request.path.startswith("/api/"):
            return error_response(413, "request_too_large", message)
        return HttpResponse(message, status=413, content_type="text/plain")
