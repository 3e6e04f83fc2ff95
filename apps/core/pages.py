"""Helpers for HTML views: the few shapes every page's view is made of, written once.

HTML views and the API call the same services; here a domain error becomes a flash
message with the error's status (a viewer's POST answers 403 with the reason shown),
and `NotFound` becomes Django's 404 page so other teams' objects stay invisible.

A view is: look its object up (`found_or_404`), `attempt` the service call (or
`attempt_form` for a bound form), then `redirect_or_page`: the redirect when it worked,
the page again with the error's status when it did not. Upload views are wrapped in
`upload_page`, which puts the size limit in place before anything reads the body.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, resolve_url
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError, NotFound
from apps.core.middleware import accepts_uploads
from apps.core.uploads import LimitedUploadHandler, UploadTooLarge, limit_uploads

Message = str | Callable[[Any], str]  # a success message, or one made from the action's value


@dataclass(frozen=True)
class Outcome:
    """What an attempted action came to: the status the page answers with, and the action's result.

    `value` is what the action returned (the created object, a (key, secret) pair, …) when
    it worked, and None when it did not; the view reads it instead of a closure writing it
    into a dict.
    """

    status: int
    value: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200


def form_errors_text(form) -> str:
    """ "name: This field is required." for each invalid field, in one line."""
    parts = []
    for field, errors in form.errors.items():
        text = " ".join(errors)
        parts.append(text if field == "__all__" else f"{form[field].label}: {text}")
    return "; ".join(parts)


def found_or_404(selector: Callable, *args, **kwargs):
    """`selector(*args, **kwargs)`, with its `NotFound` turned into Django's 404 page.

    Selectors raise `NotFound` for another team's object as for a missing one, so the
    page cannot tell them apart either.
    """
    try:
        return selector(*args, **kwargs)
    except NotFound as error:
        raise Http404(error.message) from None


def attempt(request, action: Callable[[], Any], *, success: Message) -> Outcome:
    """Call `action` (a service call); flash `success` (or `success(value)`) or the domain error.

    `NotFound` raised inside is a 404 page, not a message: the object is gone or never
    was the caller's.
    """
    try:
        value = action()
    except NotFound as error:
        raise Http404(error.message) from None
    except ApplicationError as error:
        messages.error(request, error.message)
        return Outcome(error.status_code)
    messages.success(request, success(value) if callable(success) else success)
    return Outcome(200, value)


def attempt_form(request, form, action: Callable[[dict], Any], *, success: Message) -> Outcome:
    """`attempt` for a bound form: `action(form.cleaned_data)` once the form is valid.

    An upload cut off at the size limit is refused first (413): its file fields are empty
    because of the limit, and naming them as missing would mislead. Invalid input is a 400
    that names each field.
    """
    refusal = upload_refusal(request)
    if refusal is not None:
        messages.error(request, refusal.message)
        return Outcome(refusal.status_code)
    if not form.is_valid():
        messages.error(request, form_errors_text(form))
        return Outcome(400)
    return attempt(request, lambda: action(form.cleaned_data), success=success)


def upload_refusal(request) -> UploadTooLarge | None:
    """The refusal of an upload the limited handler stopped at the limit, or None."""
    for handler in request.upload_handlers:
        if isinstance(handler, LimitedUploadHandler) and handler.exceeded:
            return handler.refusal()
    return None


def htmx_redirect(request, url: str) -> HttpResponse:
    """A redirect htmx follows as a whole page (204 + HX-Redirect), a plain one otherwise.

    For forms htmx swaps in place: a 302 there would swap the next page into the form.
    """
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)


def redirect_or_page(
    request,
    outcome: Outcome,
    to: str | Callable[[Any], str],
    page: Callable[[int], HttpResponse],
    *,
    htmx: bool = False,
) -> HttpResponse:
    """The answer to a POST: a redirect to `to` when it worked, else `page(status)`.

    `to` is a URL or view name, or a callable of the outcome's value returning one (the
    page of the object just created). `page` renders the form's page again, with the
    error already flashed, under the outcome's status. `htmx=True` for forms htmx swaps
    in place (see `htmx_redirect`).
    """
    if not outcome.ok:
        return page(outcome.status)
    url = to(outcome.value) if callable(to) else resolve_url(to)
    return htmx_redirect(request, url) if htmx else redirect(url)


def upload_page(view=None, *, post_only: bool = False, limit: Callable = limit_uploads):
    """Decorate a view that takes file uploads: login, size limit, then the CSRF check.

    The order is the point: the CSRF check reads the body, so the limited upload handler
    (`limit(request)`) must be installed before it, and the size middleware must leave the
    body to that handler (`accepts_uploads`). A body past the limit then arrives empty and
    `attempt_form` answers 413 with the limit named. `post_only` answers 405 to anything
    but POST, before reading a byte.

    Use as `@upload_page` or `@upload_page(post_only=True)`.
    """
    if view is None:
        return lambda view: upload_page(view, post_only=post_only, limit=limit)
    protected = csrf_protect(view)

    @wraps(view)
    def limited(request, *args, **kwargs):
        limit(request)
        return protected(request, *args, **kwargs)

    guarded = require_POST(limited) if post_only else limited
    return accepts_uploads(csrf_exempt(login_required(guarded)))
