"""Roles are enforced by the services, so the API and the team page refuse alike.

Owner and admin manage members; member and viewer cannot change anything in the team.
"""

import pytest

from apps.accounts.models import Membership, Role, Team
from tests.factories import UserFactory

TEAM_URL = "/api/v1/teams/acme/"
MEMBERS_URL = "/api/v1/teams/acme/members/"
MANAGERS = [Role.OWNER, Role.ADMIN]
NON_MANAGERS = [Role.MEMBER, Role.VIEWER]


def _roles(team):
    return dict(Membership.objects.filter(team=team).values_list("user__username", "role"))


# --- the API, authenticated with each role's token ----------------------------------------


@pytest.mark.parametrize("role", MANAGERS)
def test_managers_can_rename_the_team(api_as, world, role):
    response = api_as(world.by_role(role)).patch(TEAM_URL, {"name": "Acme Labs"}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "Acme Labs"


@pytest.mark.parametrize("role", NON_MANAGERS)
def test_members_and_viewers_cannot_rename_the_team(api_as, world, role):
    response = api_as(world.by_role(role)).patch(TEAM_URL, {"name": "Hacked"}, format="json")

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "permission_denied"
    assert f"your role is {role}" in error["message"]
    assert Team.objects.get(slug="acme").name == "Acme"


@pytest.mark.parametrize("role", MANAGERS)
def test_managers_can_add_members(api_as, world, role):
    UserFactory(username="newbie")

    response = api_as(world.by_role(role)).post(MEMBERS_URL, {"user": "newbie", "role": "member"}, format="json")

    assert response.status_code == 201
    assert response.json()["username"] == "newbie"
    assert _roles(world.acme)["newbie"] == "member"


@pytest.mark.parametrize("role", NON_MANAGERS)
def test_members_and_viewers_cannot_add_members(api_as, world, role):
    UserFactory(username="newbie")
    before = _roles(world.acme)

    response = api_as(world.by_role(role)).post(MEMBERS_URL, {"user": "newbie"}, format="json")

    assert response.status_code == 403
    assert _roles(world.acme) == before


@pytest.mark.parametrize("role", NON_MANAGERS)
def test_members_and_viewers_cannot_change_roles_or_remove_others(api_as, world, role):
    client = api_as(world.by_role(role))
    before = _roles(world.acme)

    assert client.patch(f"{MEMBERS_URL}adam/", {"role": "viewer"}, format="json").status_code == 403
    assert client.delete(f"{MEMBERS_URL}adam/").status_code == 403
    assert (
        client.patch(f"{MEMBERS_URL}{world.by_role(role).username}/", {"role": "owner"}, format="json").status_code
        == 403
    )
    assert _roles(world.acme) == before


def test_viewer_can_read_the_team(api_as, world):
    response = api_as(world.vera).get(TEAM_URL)

    assert response.status_code == 200
    assert response.json()["role"] == "viewer"


def test_anyone_can_leave_a_team(api_as, world):
    assert api_as(world.vera).delete(f"{MEMBERS_URL}vera/").status_code == 204
    assert "vera" not in _roles(world.acme)


def test_admin_can_change_a_members_role(api_as, world):
    response = api_as(world.adam).patch(f"{MEMBERS_URL}bob/", {"role": "viewer"}, format="json")

    assert response.status_code == 200
    assert _roles(world.acme)["bob"] == "viewer"


def test_admin_cannot_grant_or_touch_the_owner_role(api_as, world):
    client = api_as(world.adam)

    assert client.patch(f"{MEMBERS_URL}bob/", {"role": "owner"}, format="json").status_code == 403
    assert client.patch(f"{MEMBERS_URL}alice/", {"role": "viewer"}, format="json").status_code == 403
    assert client.delete(f"{MEMBERS_URL}alice/").status_code == 403
    assert _roles(world.acme)["alice"] == "owner"
    assert _roles(world.acme)["bob"] == "member"


def test_owner_can_hand_over_ownership(api_as, world):
    client = api_as(world.alice)

    assert client.patch(f"{MEMBERS_URL}adam/", {"role": "owner"}, format="json").status_code == 200
    assert client.patch(f"{MEMBERS_URL}alice/", {"role": "admin"}, format="json").status_code == 200
    assert _roles(world.acme)["adam"] == "owner"


def test_the_last_owner_can_neither_leave_nor_be_demoted(api_as, world):
    client = api_as(world.alice)

    demote = client.patch(f"{MEMBERS_URL}alice/", {"role": "admin"}, format="json")
    leave = client.delete(f"{MEMBERS_URL}alice/")

    assert demote.status_code == leave.status_code == 409
    assert "at least one owner" in leave.json()["error"]["message"]
    assert _roles(world.acme)["alice"] == "owner"


def test_adding_an_unknown_user_names_the_field(api_as, world):
    response = api_as(world.alice).post(MEMBERS_URL, {"user": "nobody"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"user": ["No such user."]}


def test_adding_an_existing_member_is_a_conflict(api_as, world):
    response = api_as(world.alice).post(MEMBERS_URL, {"user": "bob@example.com"}, format="json")

    assert response.status_code == 409


def test_an_unknown_role_names_the_field(api_as, world):
    response = api_as(world.alice).patch(f"{MEMBERS_URL}bob/", {"role": "god"}, format="json")

    assert response.status_code == 400
    assert "role" in response.json()["error"]["fields"]


# --- the team page, logged in with each role --------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER])
def test_every_role_sees_the_team_page(page_as, world, role):
    response = page_as(world.by_role(role)).get("/teams/acme/")

    assert response.status_code == 200
    assert response.context["my_membership"].role == role
    shows_add_form = b'id="member-add-form"' in response.content
    assert shows_add_form == (role in MANAGERS)


@pytest.mark.parametrize("role", NON_MANAGERS)
def test_members_and_viewers_change_nothing_on_the_team_page(page_as, world, role):
    UserFactory(username="newbie")
    client = page_as(world.by_role(role))
    before = _roles(world.acme)

    responses = [
        client.post("/teams/acme/members/", {"user": "newbie", "role": "member"}),
        client.post("/teams/acme/members/adam/role/", {"role": "viewer"}),
        client.post("/teams/acme/members/adam/remove/"),
        client.post("/teams/acme/rename/", {"name": "Hacked"}),
    ]

    assert [r.status_code for r in responses] == [403] * 4
    assert b"You must be an admin" in responses[0].content
    assert _roles(world.acme) == before
    assert Team.objects.get(slug="acme").name == "Acme"


@pytest.mark.parametrize("role", MANAGERS)
def test_managers_add_and_remove_members_on_the_team_page(page_as, world, role):
    UserFactory(username="newbie")
    client = page_as(world.by_role(role))

    added = client.post("/teams/acme/members/", {"user": "newbie", "role": "viewer"})
    changed = client.post("/teams/acme/members/newbie/role/", {"role": "member"})
    assert _roles(world.acme)["newbie"] == "member"
    removed = client.post("/teams/acme/members/newbie/remove/")

    assert [added.status_code, changed.status_code, removed.status_code] == [200, 200, 200]
    assert "newbie" not in _roles(world.acme)


def test_the_team_page_answers_htmx_with_the_members_partial(page_as, world):
    UserFactory(username="newbie")

    response = page_as(world.alice).post(
        "/teams/acme/members/", {"user": "newbie", "role": "member"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert next(t.name for t in response.templates) == "accounts/_members.html"
    assert b"newbie was invited to Acme as member." in response.content
    assert b"<html" not in response.content


def test_the_team_page_form_error_names_the_field(page_as, world):
    response = page_as(world.alice).post("/teams/acme/members/", {"user": "", "role": "member"})

    assert response.status_code == 400
    assert b"Username or email: This field is required." in response.content


def test_leaving_from_the_team_page_goes_to_the_dashboard(page_as, world):
    response = page_as(world.bob).post("/teams/acme/members/bob/remove/")

    assert response.status_code == 302
    assert "bob" not in _roles(world.acme)
