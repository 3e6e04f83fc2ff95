"""The reads the team and token pages look objects up through: each refuses what is not the caller's."""

import pytest

from apps.accounts import tokens
from apps.accounts.models import Membership, Role
from apps.accounts.selectors import invitation_for_user, team_member, team_member_count, token_for_user
from apps.core.errors import NotFound


def test_team_member_finds_members_and_pending_invitations_of_that_team_only(world):
    Membership.objects.create(team=world.acme, user=world.dave, role=Role.VIEWER, accepted_at=None)

    assert team_member(world.acme, "bob").user == world.bob
    assert team_member(world.acme, "dave").is_pending
    with pytest.raises(NotFound, match="Member not found"):
        team_member(world.acme, "charlie")  # Globex's owner is no member of Acme


def test_team_member_count_includes_pending_invitations(world):
    Membership.objects.create(team=world.acme, user=world.dave, role=Role.VIEWER, accepted_at=None)

    assert team_member_count(world.acme) == 5
    assert team_member_count(world.globex) == 1


def test_an_invitation_is_found_only_by_its_invitee_and_only_while_unanswered(world):
    invitation = Membership.objects.create(team=world.acme, user=world.dave, role=Role.VIEWER, accepted_at=None)

    assert invitation_for_user(world.dave, invitation.pk) == invitation
    with pytest.raises(NotFound):
        invitation_for_user(world.charlie, invitation.pk)
    accepted = Membership.objects.get(team=world.acme, user=world.bob)
    with pytest.raises(NotFound):
        invitation_for_user(world.bob, accepted.pk)


def test_a_token_is_found_only_by_its_owner(world):
    token, _ = tokens.token_create(user=world.bob, name="ci")

    assert token_for_user(world.bob, token.pk) == token
    with pytest.raises(NotFound, match="Token not found"):
        token_for_user(world.charlie, token.pk)
