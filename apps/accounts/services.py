"""Every write to teams and memberships, with the role rules that guard it.

Roles, strongest first: owner, admin, member, viewer.
- viewers read; members also create and run work (later apps check `Role.MEMBER`);
- admins also rename the team and add, re-role and remove members and admins;
- only owners touch owners (grant, change or remove the owner role);
- a team always keeps at least one owner.
"""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import Membership, Role, Team
from apps.accounts.plans import quota_ensure
from apps.accounts.selectors import membership_of
from apps.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied

User = get_user_model()


def require_role(user, team: Team, at_least: str) -> Membership:
    """The user's membership if their role is at least `at_least`.

    Not a member: `NotFound` (the team's existence is not revealed). A weaker role:
    `PermissionDenied` naming the role needed and the role held.
    """
    membership = membership_of(user, team)
    if membership is None:
        raise NotFound("Team not found.")
    if not membership.has_role(at_least):
        needed = {Role.MEMBER: "a member", Role.ADMIN: "an admin", Role.OWNER: "an owner"}[at_least]
        raise PermissionDenied(
            f"You must be {needed} of team '{team.slug}' to do this; your role is {membership.role}."
        )
    return membership


def _validate_role(role: str) -> None:
    if role not in Role.values:
        raise ApplicationError(
            f"Unknown role '{role}'; use one of {', '.join(Role.values)}.", fields={"role": ["Unknown role."]}
        )


def _available_slug(name: str) -> str:
    base = slugify(name)[:40] or "team"
    slug, n = base, 2
    while Team.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def team_create(*, creator, name: str, slug: str | None = None) -> Team:
    """A new team with `creator` as its owner, on the default plan."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A team needs a name.", fields={"name": ["This field is required."]})
    if slug:
        if slug != slugify(slug) or len(slug) > 50:
            raise ApplicationError(
                f"'{slug}' is not a valid slug: use lowercase letters, digits and hyphens.",
                fields={"slug": ["Invalid slug."]},
            )
        if Team.objects.filter(slug=slug).exists():
            raise Conflict(f"The slug '{slug}' is taken.", fields={"slug": ["Already taken."]})
    try:
        with transaction.atomic():
            team = Team.objects.create(name=name[:100], slug=slug or _available_slug(name))
    except IntegrityError:  # another request took the slug between the check and the insert
        raise Conflict(f"The slug '{slug or slugify(name)}' is taken.", fields={"slug": ["Already taken."]}) from None
    Membership.objects.create(team=team, user=creator, role=Role.OWNER)
    quota_ensure(team)
    return team


@transaction.atomic
def team_rename(*, actor, team: Team, name: str) -> Team:
    require_role(actor, team, Role.ADMIN)
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A team needs a name.", fields={"name": ["This field is required."]})
    team.name = name[:100]
    team.save(update_fields=["name"])
    return team


def _find_user(identifier: str):
    identifier = (identifier or "").strip()
    user = User.objects.filter(Q(username=identifier) | Q(email__iexact=identifier), is_active=True).first()
    if not identifier or user is None:
        raise ApplicationError(
            f"No active user with username or email '{identifier}'.", fields={"user": ["No such user."]}
        )
    return user


@transaction.atomic
def member_add(*, actor, team: Team, user_identifier: str, role: str = Role.MEMBER) -> Membership:
    """Invite an existing user (by username or email); they join once they accept."""
    _validate_role(role)
    require_role(actor, team, Role.OWNER if role == Role.OWNER else Role.ADMIN)
    user = _find_user(user_identifier)
    if Membership.objects.filter(team=team, user=user).exists():
        raise Conflict(f"{user.username} is already a member of {team.slug}.", fields={"user": ["Already a member."]})
    try:
        with transaction.atomic():
            return Membership.objects.create(team=team, user=user, role=role, accepted_at=None, invited_by=actor)
    except IntegrityError:
        raise Conflict(f"{user.username} is already a member of {team.slug}.") from None


def invitation_answer(*, user, membership: Membership, accept: bool) -> Membership | None:
    """The invited user accepts (the membership starts counting) or declines (it goes)."""
    if membership.user_id != user.pk or membership.accepted_at is not None:
        raise NotFound("Invitation not found.")
    if not accept:
        membership.delete()
        return None
    Membership.objects.filter(pk=membership.pk, accepted_at__isnull=True).update(accepted_at=timezone.now())
    membership.refresh_from_db()
    return membership


def _locked(membership: Membership) -> Membership:
    """The membership as it is now, locked: a decision on a stale copy could demote a new owner."""
    current = Membership.objects.select_for_update().filter(pk=membership.pk).select_related("team", "user").first()
    if current is None:
        raise NotFound("Member not found.")
    return current


def _lock_owners(team: Team) -> int:
    """Lock the team's owner rows and count them (two demotions cannot both pass)."""
    owners = Membership.objects.select_for_update().filter(team=team, role=Role.OWNER, accepted_at__isnull=False)
    return len(list(owners))


@transaction.atomic
def member_set_role(*, actor, membership: Membership, role: str) -> Membership:
    _validate_role(role)
    membership = _locked(membership)
    touches_owner = Role.OWNER in (role, membership.role)
    require_role(actor, membership.team, Role.OWNER if touches_owner else Role.ADMIN)
    demotes_owner = membership.role == Role.OWNER and role != Role.OWNER and not membership.is_pending
    if demotes_owner and _lock_owners(membership.team) <= 1:
        raise Conflict("A team must keep at least one owner; make someone else owner first.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def member_remove(*, actor, membership: Membership) -> None:
    """Remove a member (or withdraw an invitation). Anyone may leave; others need admin (owner for owners)."""
    membership = _locked(membership)
    team = membership.team
    if membership.user_id != actor.pk:
        require_role(actor, team, Role.OWNER if membership.role == Role.OWNER else Role.ADMIN)
    elif membership_of(actor, team) is None:
        raise NotFound("Team not found.")
    if membership.role == Role.OWNER and not membership.is_pending and _lock_owners(team) <= 1:
        raise Conflict("A team must keep at least one owner; make someone else owner first.")
    membership.delete()
