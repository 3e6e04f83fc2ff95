"""The UI shell: every navigation page renders, offline, for members and for newcomers."""

import re

import pytest
from django.core.management import call_command

from apps.accounts.current import SESSION_KEY
from apps.core.context_processors import NAVIGATION
from tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.queries import assert_queries_constant

NAV_URLS = ["/", "/datasets/", "/models/", "/jobs/", "/experiments/", "/nodes/", "/deployments/", "/team/"]
OUTSIDE_ASSET = re.compile(r"""(?:src|href|action)=["'](?:https?:)?//""")


def test_navigation_lists_every_section():
    assert [label for label, _ in NAVIGATION] == [
        "Dashboard",
        "Datasets",
        "Models",
        "Jobs",
        "Experiments",
        "Nodes",
        "Deployments",
        "Team",
    ]


@pytest.mark.parametrize("url", NAV_URLS)
def test_every_nav_page_renders_without_outside_assets(page_as, world, url):
    response = page_as(world.vera).get(url, follow=True)

    assert response.status_code == 200
    html = response.content.decode()
    assert OUTSIDE_ASSET.findall(html) == []
    for nav_url in NAV_URLS:
        assert f'href="{nav_url}"' in html


@pytest.mark.parametrize("url", NAV_URLS)
def test_pages_require_login(client, db, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_user_in_no_team_is_told_what_to_do_next(page_as, world):
    html = page_as(world.dave).get("/").content.decode()

    assert "You are not in any team yet" in html
    assert 'href="/teams/new/"' in html


def test_the_team_nav_entry_sends_a_user_in_no_team_to_create_one(page_as, world):
    response = page_as(world.dave).get("/team/")

    assert response["Location"] == "/teams/new/"


def test_creating_a_team_from_the_page_makes_it_current(page_as, world):
    client = page_as(world.dave)

    response = client.post("/teams/new/", {"name": "Dave's Lab", "slug": ""})

    assert response["Location"] == "/teams/daves-lab/"
    assert client.session[SESSION_KEY] == "daves-lab"


def test_dashboard_shows_the_current_teams_quota_bars(page_as, world):
    html = page_as(world.alice).get("/").content.decode()

    assert "Acme" in html
    assert 'data-quota="storage_bytes"' in html
    assert "0 B of 5.0 GiB" in html


def test_switching_team_changes_the_current_team(page_as, world):
    MembershipFactory(user=world.alice, team=world.globex, role="viewer")
    client = page_as(world.alice)

    response = client.post("/teams/switch/", {"team": "globex", "next": "/team/"})

    assert response["Location"] == "/team/"
    assert client.get("/team/")["Location"] == "/teams/globex/"
    assert client.get("/").context["current_team"].slug == "globex"


def test_switching_to_a_team_you_are_not_in_is_404(page_as, world):
    client = page_as(world.alice)

    assert client.post("/teams/switch/", {"team": "globex"}).status_code == 404
    assert SESSION_KEY not in client.session


def test_switching_refuses_to_redirect_off_site(page_as, world):
    response = page_as(world.alice).post("/teams/switch/", {"team": "acme", "next": "https://evil.example/"})

    assert response["Location"] == "/"


def test_team_page_queries_do_not_grow_with_members(page_as, world):
    client = page_as(world.alice)

    def add_members():
        for n in range(8):
            MembershipFactory(team=world.acme, user=UserFactory(username=f"extra{n}"))

    assert_queries_constant(lambda: client.get("/teams/acme/"), add_members, at_most=12)


def test_dashboard_queries_do_not_grow_with_teams(page_as, world):
    client = page_as(world.alice)

    def add_teams():
        for n in range(8):
            MembershipFactory(user=world.alice, team=TeamFactory(slug=f"more-{n}"))

    assert_queries_constant(lambda: client.get("/"), add_teams, at_most=16)


def test_login_page_logs_in(client, world):
    from tests.factories import PASSWORD

    response = client.post("/login/", {"username": "alice", "password": PASSWORD})

    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_favicon_and_health_are_served(client, db):
    assert client.get("/favicon.ico")["Content-Type"] == "image/svg+xml"
    assert client.get("/healthz").json() == {"status": "ok"}


def test_unknown_page_is_the_lepton_404(page_as, world):
    response = page_as(world.alice).get("/no-such-page/")

    assert response.status_code == 404
    assert b"belongs to a team you are not in" in response.content


def test_seed_demo_is_idempotent(db, settings, capsys):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")

    from django.contrib.auth import get_user_model

    from apps.accounts.models import Membership, TeamQuota

    demo = get_user_model().objects.get(username="demo")
    assert demo.check_password("demo")
    assert sorted(Membership.objects.filter(user=demo).values_list("team__slug", "role")) == [
        ("demo", "owner"),
        ("research", "owner"),
    ]
    assert TeamQuota.objects.filter(team__slug="demo").count() == 1
    assert "username: demo" in capsys.readouterr().out


def test_seed_demo_refuses_with_debug_off(db, settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError, match="known password"):
        call_command("seed_demo")
