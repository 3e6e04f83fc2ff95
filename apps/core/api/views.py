"""Base pieces for API views."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

from apps.core.api.filtering import list_query_params, refuse_unknown_query_params


def file_download_responses(content_type: str) -> dict:
    """A file download's answers: the bytes (filesystem storage) or, with S3, a presigned redirect."""
    return {
        (200, content_type): OpenApiResponse(OpenApiTypes.BINARY),
        302: OpenApiResponse(description="S3 storage: a redirect to a short-lived presigned URL of the file."),
    }


class StrictQueryParamsMixin:
    """Every GET answers 400 to a query parameter the view does not read (as the README promises).

    A list reads its filters, ordering and page (`list_query_params`); any other action or
    method reads only what `action_query_params` names for it, the same `OpenApiParameter`s
    its `extend_schema` documents, so the schema and the check cannot drift apart.
    """

    action_query_params: dict = {}  # action (or method, on a plain APIView) -> [OpenApiParameter]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method in ("GET", "HEAD"):
            refuse_unknown_query_params(request, self.accepted_query_params(request))

    def accepted_query_params(self, request) -> set[str]:
        action = getattr(self, "action", None) or request.method.lower()
        if action == "list":
            return list_query_params(self)
        return {parameter.name for parameter in self.action_query_params.get(action, ())}


class ScopedQuerysetMixin(StrictQueryParamsMixin):
    """Views implement `scoped_queryset()`; drf-spectacular gets an empty queryset instead.

    The schema is built without a request user or URL kwargs, so a team-scoped
    queryset cannot be computed then; `model` tells the schema what the view lists.
    """

    model = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.scoped_queryset()

    def scoped_queryset(self):
        raise NotImplementedError


class LimitedUploadMixin:
    """POST bodies stream through the size-limited upload handler (see apps.core.uploads).

    Installed before anything reads the body (session auth's CSRF check does), so the
    limit applies while the upload streams in. Call `refuse_oversized_upload()` first thing.
    """

    upload_handler = None
    accepts_uploads = True  # RequestSizeLimitMiddleware: the upload limit, not the small one

    def initialize_request(self, request, *args, **kwargs):
        from apps.core.uploads import limit_uploads

        if request.method == "POST":
            self.upload_handler = limit_uploads(request)
        return super().initialize_request(request, *args, **kwargs)

    def refuse_oversized_upload(self, request) -> None:
        request.data  # noqa: B018 (parse the body now, through the limited handler)
        if self.upload_handler is not None and self.upload_handler.exceeded:
            raise self.upload_handler.refusal()
