"""Root URLs: pages at the top, the admin, and the versioned API under /api/v1/."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core import views as core_views

api_v1 = [
    path("", include("apps.accounts.api_urls")),
    path("", include("apps.datasets.api_urls")),
    path("", include("apps.registry.api_urls")),
    path("", include("apps.jobs.api_urls")),
    path("", include("apps.nodes.api_urls")),
    path("", include("apps.experiments.api_urls")),
    path("", include("apps.deployments.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: the CSP refuses inline scripts.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    # Last: any other /api/v1/ path answers the API's JSON 404, with DEBUG on too.
    re_path(r"^.*$", core_views.api_not_found),
]

urlpatterns = [
    path("", include("apps.datasets.urls")),
    path("", include("apps.registry.urls")),
    path("", include("apps.jobs.urls")),
    path("", include("apps.nodes.urls")),
    path("", include("apps.experiments.urls")),
    path("", include("apps.deployments.urls")),
    path("", include("apps.dashboard.urls")),
    path("", include("apps.accounts.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"))),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("healthz", core_views.health, name="health"),
]

handler400 = "apps.core.views.bad_request"
handler403 = "apps.core.views.permission_denied"
handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"

admin.site.site_header = "Lepton operations"
admin.site.site_title = "Lepton admin"
