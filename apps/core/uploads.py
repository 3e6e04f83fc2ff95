"""Uploads that stop at the size limit while streaming, never after, into Lepton's own temp folder."""

from pathlib import Path

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

from apps.core.errors import ApplicationError
from apps.core.units import format_bytes


def upload_temp_dir() -> Path:
    """FILE_UPLOAD_TEMP_DIR, made if missing: where the periodic cleanup finds what killed uploads left."""
    folder = Path(settings.FILE_UPLOAD_TEMP_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class UploadTooLarge(ApplicationError):
    code = "upload_too_large"
    status_code = 413


class LimitedUploadHandler(TemporaryFileUploadHandler):
    """Streams the file to a temp file and gives up as soon as it passes `max_bytes`.

    A declared Content-Length over the limit is refused before reading a byte; a body
    that grows past it (a missing or lying length) is cut off at the limit. Either way
    the temp file is removed and `exceeded` is set for the view to answer 413.
    """

    def __init__(self, request=None, max_bytes: int | None = None):
        super().__init__(request)
        self.max_bytes = max_bytes or settings.LEPTON_MAX_UPLOAD_BYTES
        self.received = 0
        self.exceeded = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.max_bytes + 64 * 1024:  # multipart framing allowance
            self.exceeded = True
            return QueryDict(encoding=encoding), MultiValueDict()
        return None

    def new_file(self, *args, **kwargs):
        upload_temp_dir()  # Django writes there but does not make it
        return super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return super().receive_data_chunk(raw_data, start)

    def refusal(self) -> UploadTooLarge:
        return UploadTooLarge(
            f"file: the upload is larger than the limit of {format_bytes(self.max_bytes)}",
            fields={"file": [f"Larger than {format_bytes(self.max_bytes)}."]},
        )


def limit_uploads(request) -> LimitedUploadHandler:
    """Install the limited handler on a request before its body is read; returns it."""
    handler = LimitedUploadHandler(request)
    request.upload_handlers = [handler]
    return handler
