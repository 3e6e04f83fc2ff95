"""The browser's current team: the one chosen in the team switcher, kept in the session.

List pages show the current team's objects; object pages work for any of the user's
teams. The API has no current team: it takes `?team=<slug>` where it matters.
"""

from apps.accounts.models import Membership
from apps.accounts.selectors import user_memberships

SESSION_KEY = "lepton_current_team"


def memberships_of_request(request) -> list[Membership]:
    """The user's memberships, fetched once per request (one query)."""
    if not hasattr(request, "_lepton_memberships"):
        request._lepton_memberships = list(user_memberships(request.user))
    return request._lepton_memberships


def current_membership(request) -> Membership | None:
    """The chosen team's membership; the first team by name when none is chosen or it went away."""
    memberships = memberships_of_request(request)
    chosen = request.session.get(SESSION_KEY)
    return next((m for m in memberships if m.team.slug == chosen), memberships[0] if memberships else None)


def current_team(request):
    membership = current_membership(request)
    return membership.team if membership else None


def choose_team(request, slug: str) -> bool:
    """Make `slug` the current team if the user is in it; False otherwise."""
    if any(m.team.slug == slug for m in memberships_of_request(request)):
        request.session[SESSION_KEY] = slug
        return True
    return False
