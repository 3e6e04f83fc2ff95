"""Nobody joins a team without saying yes: an admin's "add member" is an invitation until accepted."""

from apps.accounts.models import Membership
from apps.accounts.services import member_add, team_create
from apps.datasets.models import Dataset
from tests.factories import UserFactory


def test_an_invited_user_has_no_access_until_they_accept(api_as, world):
    newbie = UserFactory(username="newbie")
    member_add(actor=world.alice, team=world.acme, user_identifier="newbie", role="member")
    client = api_as(newbie)

    assert client.get("/api/v1/teams/acme/").status_code == 404
    invitations = client.get("/api/v1/invitations/").json()["results"]
    assert [(i["team"], i["role"], i["invited_by"]) for i in invitations] == [("acme", "member", "alice")]

    assert client.post(f"/api/v1/invitations/{invitations[0]['id']}/accept/").status_code == 200
    assert client.get("/api/v1/teams/acme/").json()["role"] == "member"


def test_a_declined_invitation_is_gone(api_as, world):
    newbie = UserFactory(username="newbie")
    invitation = member_add(actor=world.alice, team=world.acme, user_identifier="newbie")

    assert api_as(newbie).post(f"/api/v1/invitations/{invitation.pk}/decline/").status_code == 204
    assert not Membership.objects.filter(pk=invitation.pk).exists()


def test_nobody_else_can_answer_an_invitation(api_as, world):
    UserFactory(username="newbie")
    invitation = member_add(actor=world.alice, team=world.acme, user_identifier="newbie")

    assert api_as(world.bob).post(f"/api/v1/invitations/{invitation.pk}/accept/").status_code == 404
    assert Membership.objects.get(pk=invitation.pk).accepted_at is None


def test_a_hostile_team_cannot_capture_a_users_new_work(page_as, world):
    """Charlie makes a team that sorts first and "adds" Alice; her next dataset still lands in Acme."""
    hostile = team_create(creator=world.charlie, name="!Acme")
    member_add(actor=world.charlie, team=hostile, user_identifier="alice@example.com", role="admin")
    client = page_as(world.alice)

    client.post(
        "/datasets/new/",
        {"name": "secret", "task": "tabular_classification", "source": "bundled", "bundled": "iris", "seed": "0"},
    )

    assert Dataset.objects.get(name="secret").team == world.acme
    assert "!Acme" not in client.get("/").content.decode().split('id="team-select"')[1].split("</select>")[0]


def test_invitations_are_shown_and_answered_on_the_dashboard(page_as, world):
    newbie = UserFactory(username="newbie")
    invitation = member_add(actor=world.alice, team=world.acme, user_identifier="newbie", role="viewer")
    client = page_as(newbie)

    assert "alice invited you to <strong>Acme</strong> as viewer." in client.get("/").content.decode()
    client.post(f"/invitations/{invitation.pk}/accept/")

    assert client.get("/").context["current_team"] == world.acme


def test_the_team_page_marks_pending_members(page_as, world):
    UserFactory(username="newbie")
    member_add(actor=world.alice, team=world.acme, user_identifier="newbie")

    html = page_as(world.alice).get("/teams/acme/").content.decode()

    assert 'data-member="newbie"' in html
    assert ">invited<" in html


def test_a_pending_invitation_to_owner_does_not_count_as_an_owner(api_as, world):
    UserFactory(username="newbie")
    member_add(actor=world.alice, team=world.acme, user_identifier="newbie", role="owner")

    response = api_as(world.alice).patch("/api/v1/teams/acme/members/alice/", {"role": "admin"}, format="json")

    assert response.status_code == 409
