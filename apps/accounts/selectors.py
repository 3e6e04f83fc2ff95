"""Team-scoped reads. Every query of team-owned data goes through `scope_to_teams`.

A user sees exactly the objects of the teams they belong to; an object of any other
team is indistinguishable from one that does not exist (404, never 403).
"""

from django.db.models import QuerySet

from apps.accounts.models import ApiToken, Membership, Team
from apps.core.errors import NotFound


def user_teams(user) -> QuerySet[Team]:
    """The teams `user` is a member of (none for anonymous users)."""
    if not getattr(user, "is_authenticated", False):
        return Team.objects.none()
    # one filter() call: both conditions apply to the same membership row
    return Team.objects.filter(memberships__user=user, memberships__accepted_at__isnull=False)


def scope_to_teams(queryset: QuerySet, user, *, via: str = "team") -> QuerySet:
    """Restrict `queryset` to rows whose `via` team the user belongs to.

    `via` is the path from the model to its Team ("team", or e.g. "version__model__team").
    The membership test is a subquery, so it adds no join fan-out and no duplicates.
    """
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    return queryset.filter(**{f"{via}__in": user_teams(user).values("pk")})


def get_scoped_or_404(queryset: QuerySet, user, *, via: str = "team", **lookup):
    """One object of the user's teams, or `NotFound` for anything else."""
    try:
        return scope_to_teams(queryset, user, via=via).get(**lookup)
    except queryset.model.DoesNotExist:
        raise NotFound(f"{queryset.model._meta.verbose_name.capitalize()} not found.") from None


def team_for_user(user, slug: str) -> Team:
    """The team with this slug if the user is in it, else `NotFound`."""
    return get_scoped_or_404(Team.objects.select_related("quota__plan"), user, via="pk", slug=slug)


def membership_of(user, team: Team) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(user=user, team=team, accepted_at__isnull=False).first()


def memberships_with_users() -> QuerySet[Membership]:
    return Membership.objects.select_related("user").order_by("user__username")


def team_memberships(team: Team) -> QuerySet[Membership]:
    return memberships_with_users().filter(team=team)


def team_member_count(team: Team) -> int:
    """How many memberships the team has, pending invitations included (what its page lists)."""
    return team_memberships(team).count()


def team_member(team: Team, username: str) -> Membership:
    """The membership (or pending invitation) of `username` in `team`, else `NotFound`."""
    membership = team_memberships(team).filter(user__username=username).first()
    if membership is None:
        raise NotFound("Member not found.")
    return membership


def user_memberships(user) -> QuerySet[Membership]:
    if not getattr(user, "is_authenticated", False):
        return Membership.objects.none()
    return Membership.objects.filter(user=user, accepted_at__isnull=False).select_related("team").order_by("team__name")


def user_invitations(user) -> QuerySet[Membership]:
    """Invitations waiting for the user's answer."""
    if not getattr(user, "is_authenticated", False):
        return Membership.objects.none()
    return Membership.objects.filter(user=user, accepted_at__isnull=True).select_related("team", "invited_by")


def invitation_for_user(user, pk) -> Membership:
    """One invitation waiting for the user's answer, else `NotFound` (someone else's, or answered)."""
    invitation = user_invitations(user).filter(pk=pk).first()
    if invitation is None:
        raise NotFound("Invitation not found.")
    return invitation


def user_tokens(user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def token_for_user(user, pk) -> ApiToken:
    """One of the user's own API tokens, else `NotFound`."""
    token = user_tokens(user).filter(pk=pk).first()
    if token is None:
        raise NotFound("Token not found.")
    return token
