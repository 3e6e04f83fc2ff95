"""The page helpers: lookups that 404, actions that flash, the redirect-or-page answer, uploads."""

from types import SimpleNamespace

import pytest
from django import forms
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import Http404, HttpResponse
from django_htmx.middleware import HtmxDetails

from apps.core.errors import NotFound, PermissionDenied
from apps.core.pages import (
    Outcome,
    attempt,
    attempt_form,
    found_or_404,
    redirect_or_page,
    upload_page,
)
from apps.core.uploads import LimitedUploadHandler


class NameForm(forms.Form):
    name = forms.CharField(label="Name")


@pytest.fixture
def page_request(rf):
    """make(**headers) -> a POST as a page sees it: a signed-in user, flash messages, htmx details."""

    def make(**headers):
        request = rf.post("/", **headers)
        request.user = SimpleNamespace(is_authenticated=True)
        request._messages = CookieStorage(request)
        request.htmx = HtmxDetails(request)
        return request

    return make


def flashed(request) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in get_messages(request)]


def gone():
    raise NotFound("Dataset not found.")


def refused():
    raise PermissionDenied("You must be a member.")


def test_found_or_404_passes_the_selectors_arguments_through():
    assert found_or_404(lambda a, b=0: a + b, 1, b=2) == 3


def test_found_or_404_turns_not_found_into_the_404_page():
    with pytest.raises(Http404, match=r"Dataset not found\."):
        found_or_404(gone)


def test_attempt_returns_the_actions_value_and_flashes_success(page_request):
    request = page_request()

    outcome = attempt(request, lambda: "v1", success=lambda value: f"Made {value}.")

    assert outcome == Outcome(200, "v1")
    assert outcome.ok
    assert flashed(request) == [("success", "Made v1.")]


def test_attempt_flashes_a_domain_error_with_its_status(page_request):
    request = page_request()

    outcome = attempt(request, refused, success="never")

    assert (outcome.status, outcome.value, outcome.ok) == (403, None, False)
    assert flashed(request) == [("error", "You must be a member.")]


def test_attempt_answers_not_found_with_the_404_page(page_request):
    request = page_request()

    with pytest.raises(Http404):
        attempt(request, gone, success="never")
    assert flashed(request) == []


def test_attempt_form_names_each_invalid_field_and_does_not_act(page_request):
    request = page_request()
    calls = []

    outcome = attempt_form(request, NameForm({}), calls.append, success="never")

    assert outcome.status == 400
    assert calls == []
    assert flashed(request) == [("error", "Name: This field is required.")]


def test_attempt_form_hands_the_action_the_cleaned_data(page_request):
    request = page_request()

    outcome = attempt_form(request, NameForm({"name": "iris"}), lambda data: data["name"], success="Saved.")

    assert outcome == Outcome(200, "iris")


def test_attempt_form_refuses_an_upload_cut_off_at_the_limit_before_validating(page_request, settings):
    settings.LEPTON_MAX_UPLOAD_BYTES = 1000
    request = page_request()
    handler = LimitedUploadHandler(request)
    handler.exceeded = True
    request.upload_handlers = [handler]

    outcome = attempt_form(request, NameForm({}), lambda data: "never", success="never")

    assert outcome.status == 413
    assert flashed(request) == [("error", "file: the upload is larger than the limit of 1000 B")]


def test_redirect_or_page_redirects_to_the_created_objects_page(page_request):
    request = page_request()

    response = redirect_or_page(request, Outcome(200, 7), lambda pk: f"/things/{pk}/", lambda status: None)

    assert (response.status_code, response["Location"]) == (302, "/things/7/")


def test_redirect_or_page_resolves_a_view_name(page_request):
    response = redirect_or_page(page_request(), Outcome(200), "datasets:list", lambda status: None)

    assert response["Location"] == "/datasets/"


def test_redirect_or_page_renders_the_page_again_with_the_failures_status(page_request):
    response = redirect_or_page(
        page_request(), Outcome(409), "/never/", lambda status: HttpResponse("the form", status=status)
    )

    assert (response.status_code, response.content) == (409, b"the form")


def test_redirect_or_page_answers_htmx_with_a_redirect_header_when_asked(page_request):
    htmx = page_request(HTTP_HX_REQUEST="true")

    swapped = redirect_or_page(htmx, Outcome(200), "/next/", lambda status: None, htmx=True)
    plain = redirect_or_page(htmx, Outcome(200), "/next/", lambda status: None)
    not_htmx = redirect_or_page(page_request(), Outcome(200), "/next/", lambda status: None, htmx=True)

    assert (swapped.status_code, swapped["HX-Redirect"]) == (204, "/next/")
    assert (plain.status_code, plain["Location"]) == (302, "/next/")
    assert (not_htmx.status_code, not_htmx["Location"]) == (302, "/next/")


def recording_upload_page(**options):
    """An upload view that records what it saw: the handlers in place when it ran."""
    seen = []

    @upload_page(**options)
    def view(request):
        seen.append(list(request.upload_handlers))
        return HttpResponse("ok")

    return view, seen


def test_upload_page_leaves_the_body_to_its_own_limit_and_checks_csrf_itself():
    view, _ = recording_upload_page()

    assert view.accepts_uploads
    assert view.csrf_exempt


def test_upload_page_installs_the_limit_before_the_csrf_check_reads_the_body(page_request):
    limited = []
    view, seen = recording_upload_page(limit=limited.append)
    request = page_request()  # RequestFactory enforces CSRF, and this POST carries no token

    response = view(request)

    assert response.status_code == 403
    assert limited == [request]
    assert seen == []


def test_upload_page_runs_the_view_behind_the_limited_handler(page_request):
    view, seen = recording_upload_page()
    request = page_request()
    request._dont_enforce_csrf_checks = True

    response = view(request)

    assert response.status_code == 200
    assert [type(handler) for handler in seen[0]] == [LimitedUploadHandler]


def test_upload_page_sends_anonymous_users_to_log_in_before_reading_anything(rf):
    limited = []
    view, _ = recording_upload_page(limit=limited.append)
    request = rf.post("/upload/")
    request.user = AnonymousUser()

    response = view(request)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert limited == []


def test_upload_page_post_only_refuses_other_methods_before_limiting(rf):
    limited = []
    view, _ = recording_upload_page(post_only=True, limit=limited.append)
    request = rf.get("/upload/")
    request.user = SimpleNamespace(is_authenticated=True)

    assert view(request).status_code == 405
    assert limited == []
