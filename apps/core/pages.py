"""Helpers for HTML views: turn service outcomes into flash messages and statuses.

HTML views and the API call the same services; here a domain error becomes a flash
message with the error's status (a viewer's POST answers 403 with the reason shown),
and `NotFound` becomes Django's 404 page so other teams' objects stay invisible.
"""

from collections.abc import Callable

from django.contrib import messages
from django.http import Http404

from apps.core.errors import ApplicationError, NotFound


def form_errors_text(form) -> str:
    """ "name: This field is required." for each invalid field, in one line."""
    parts = []
    for field, errors in form.errors.items():
        text = " ".join(errors)
        parts.append(text if field == "__all__" else f"{form[field].label}: {text}")
    return "; ".join(parts)


def run_action(request, action: Callable[[], str]) -> int:
    """Call `action` (a service call returning a success message); flash the outcome.

    Returns the HTTP status the page should answer with: 200, or the domain error's.
    """
    try:
        message = action()
    except NotFound as error:
        raise Http404(error.message) from None
    except ApplicationError as error:
        messages.error(request, error.message)
        return error.status_code
    messages.success(request, message)
    return 200


def run_form_action(request, form, action: Callable[[dict], str]) -> int:
    """`run_action` for a bound form: invalid input is a 400 that names each field."""
    if not form.is_valid():
        messages.error(request, form_errors_text(form))
        return 400
    return run_action(request, lambda: action(form.cleaned_data))
