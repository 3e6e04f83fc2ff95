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
