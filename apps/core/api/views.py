"""Base pieces for API views."""


class ScopedQuerysetMixin:
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
