from apps.accounts.current import current_membership, memberships_of_request


def current_team(request):
    """`current_team`, `current_role` and `my_memberships` for the layout's team switcher."""
    # Handlers outside the middleware (e.g. the static files handler's 404) have no user.
    if not getattr(getattr(request, "user", None), "is_authenticated", False):
        return {}
    membership = current_membership(request)
    return {
        "my_memberships": memberships_of_request(request),
        "current_team": membership.team if membership else None,
        "current_role": membership.role if membership else None,
    }
