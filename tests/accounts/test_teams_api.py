import pytest

from apps.accounts.models import Membership, Role, Team, UsageRecord
from apps.accounts.quotas import usage_record
from tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.queries import assert_queries_constant

TEAMS_URL = "/api/v1/teams/"


def test_teams_list_shows_only_the_callers_teams_with_their_role(api_as, world):
    body = api_as(world.vera).get(TEAMS_URL).json()

    assert body["count"] == 1
    assert body["results"] == [
        {"slug": "acme", "name": "Acme", "role": "viewer", "created_at": body["results"][0]["created_at"]}
    ]


def test_a_user_in_no_team_sees_nothing(api_as, world):
    body = api_as(world.dave).get(TEAMS_URL).json()

    assert body["count"] == 0
    assert api_as(world.dave).get("/api/v1/teams/acme/").status_code == 404


def test_team_detail_shows_members_quota_and_usage(api_as, world):
    usage_record(team=world.acme, kind=UsageRecord.Kind.STORAGE_BYTES, amount=3 * 1024**3, source="test:upload")

    body = api_as(world.bob).get("/api/v1/teams/acme/").json()

    assert [m["username"] for m in body["members"]] == ["adam", "alice", "bob", "vera"]
    assert body["quota"]["plan"] == {"slug": "free-trial", "name": "Free trial"}
    storage = next(line for line in body["quota"]["lines"] if line["name"] == "storage_bytes")
    assert storage["used"] == 3 * 1024**3
    assert storage["display"] == "3.0 GiB of 5.0 GiB"


def test_creating_a_team_makes_the_caller_its_owner_on_the_default_plan(api_as, world):
    response = api_as(world.dave).post(TEAMS_URL, {"name": "Dave's Lab"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["slug"] == "daves-lab"
    assert body["role"] == "owner"
    assert body["quota"]["plan"]["slug"] == "free-trial"
    assert Membership.objects.get(team__slug="daves-lab").user == world.dave


def test_a_taken_slug_is_a_conflict_naming_the_field(api_as, world):
    response = api_as(world.dave).post(TEAMS_URL, {"name": "Copycat", "slug": "acme"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {"slug": ["Already taken."]}
    assert Team.objects.count() == 2


def test_a_blank_name_names_the_field(api_as, world):
    response = api_as(world.dave).post(TEAMS_URL, {"name": ""}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_teams_filter_and_order_by_allowlisted_fields(api_as, world):
    for slug in ["beta", "alpha-labs"]:
        MembershipFactory(user=world.alice, team=TeamFactory(slug=slug), role=Role.MEMBER)
    client = api_as(world.alice)

    ordered = client.get(TEAMS_URL, {"ordering": "-slug"}).json()["results"]
    filtered = client.get(TEAMS_URL, {"name": "LABS"}).json()["results"]

    assert [t["slug"] for t in ordered] == ["beta", "alpha-labs", "acme"]
    assert [t["slug"] for t in filtered] == ["alpha-labs"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"ordering": "owner__password"}, "ordering"),
        ({"ordering": "memberships__user__password"}, "ordering"),
        ({"memberships__user__password__startswith": "p"}, "memberships__user__password__startswith"),
        ({"nmae": "x"}, "nmae"),
    ],
)
def test_unlisted_filters_and_orderings_answer_400(api_as, world, params, field):
    response = api_as(world.alice).get(TEAMS_URL, params)

    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == [field]
    assert "Allowed:" in error["message"]


def test_teams_list_is_paginated(api_as, world):
    for n in range(3):
        MembershipFactory(user=world.alice, team=TeamFactory(slug=f"extra-{n}"))

    body = api_as(world.alice).get(TEAMS_URL, {"page_size": 2, "page": 2}).json()

    assert body["count"] == 4
    assert len(body["results"]) == 2
    assert body["previous"] is not None


def test_teams_list_queries_do_not_grow_with_teams(api_as, world):
    client = api_as(world.alice)

    def add_teams():
        for n in range(8):
            MembershipFactory(user=world.alice, team=TeamFactory(slug=f"more-{n}"))

    assert_queries_constant(lambda: client.get(TEAMS_URL), add_teams, at_most=4)


def test_members_list_queries_do_not_grow_with_members(api_as, world):
    client = api_as(world.alice)

    def add_members():
        for n in range(8):
            MembershipFactory(team=world.acme, user=UserFactory(username=f"extra{n}"))

    assert_queries_constant(lambda: client.get("/api/v1/teams/acme/members/"), add_members, at_most=5)


def test_team_detail_queries_do_not_grow_with_members(api_as, world):
    client = api_as(world.alice)

    def add_members():
        for n in range(8):
            MembershipFactory(team=world.acme, user=UserFactory(username=f"extra{n}"))

    assert_queries_constant(lambda: client.get("/api/v1/teams/acme/"), add_members, at_most=8)


def test_members_list_filters_by_role(api_as, world):
    body = api_as(world.alice).get("/api/v1/teams/acme/members/", {"role": "viewer"}).json()

    assert [m["username"] for m in body["results"]] == ["vera"]


def test_members_list_refuses_an_unknown_role_value(api_as, world):
    response = api_as(world.alice).get("/api/v1/teams/acme/members/", {"role": "god"})

    assert response.status_code == 400
    assert "role" in response.json()["error"]["fields"]
