"""Site-wide responses: favicon, health check, and error pages that speak JSON under /api/."""

from django.conf import settings
from django.db import connection
from django.http import FileResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from apps.core.api.errors import error_response

FAVICON = settings.BASE_DIR / "static" / "favicon.svg"


@require_GET
@cache_control(max_age=86400, public=True)
def favicon(request):
    return FileResponse(FAVICON.open("rb"), content_type="image/svg+xml")


@require_GET
def health(request):
    """For load balancers: 200 when the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def api_not_found(request):
    return error_response(404, "not_found", f"No API endpoint at {request.path}.")


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _is_api(request):
        return error_response(404, "not_found", "Not found.")
    return render(request, "404.html", status=404)


def server_error(request):
    if _is_api(request):
        return error_response(500, "server_error", "Internal server error; the operators have the details in the log.")
    return render(request, "500.html", status=500)


def permission_denied(request, exception=None):
    if _is_api(request):
        return error_response(403, "permission_denied", str(exception or "Permission denied."))
    return render(request, "403.html", status=403)


def bad_request(request, exception=None):
    if _is_api(request):
        return error_response(400, "bad_request", "Bad request.")
    return render(request, "400.html", status=400)
