"""Log in, switch team, visit every navigation page in real Chromium: no console error anywhere."""

import re

import pytest

from apps.accounts.models import Membership, Role
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _log_in(page, base_url, username):
    page.goto(f"{base_url}/")
    assert page.url.startswith(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def test_log_in_switch_team_and_visit_every_page(page, live_server, world):
    Membership.objects.create(user=world.alice, team=world.globex, role=Role.VIEWER)
    base = live_server.url

    _log_in(page, base, "alice")
    assert page.locator("h1").first.inner_text() == "Acme"

    with page.expect_navigation():
        page.select_option("#team-select", "globex")
    assert page.locator("#team-select").input_value() == "globex"
    assert page.locator("h1").first.inner_text() == "Globex"

    nav_links = page.locator("#main-nav .navbar-nav.me-auto a.nav-link")
    labels = nav_links.all_inner_texts()
    assert labels == ["Dashboard", "Datasets", "Models", "Jobs", "Experiments", "Nodes", "Deployments", "Team"]
    for label in labels:
        with page.expect_navigation():
            page.locator("#main-nav a.nav-link", has_text=re.compile(f"^{label}$")).click()
        assert page.locator("main h1").count() >= 1, f"{label} has no heading"
        assert page.locator("#main-nav a.nav-link.active").inner_text() == label

    for extra in ["/tokens/", "/api/v1/docs/"]:
        page.goto(f"{base}{extra}")
    page.wait_for_selector(".swagger-ui .info")  # the offline docs really rendered

    assert page.problems.items == []


def test_admin_adds_a_member_through_htmx_without_a_reload(page, live_server, world):
    UserFactory(username="newbie")
    _log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/teams/acme/")
    page.evaluate("window.__marker = 'same page'")

    page.fill("#id_member_user", "newbie")
    page.select_option("#id_member_role", "viewer")
    page.click("#member-add-form button[type=submit]")

    page.wait_for_selector('tr[data-member="newbie"]')
    assert page.evaluate("window.__marker") == "same page"  # swapped in place, no navigation
    assert "newbie was invited to Acme as viewer." in page.locator("#members").inner_text()
    assert Membership.objects.get(team=world.acme, user__username="newbie").role == Role.VIEWER
    assert page.problems.items == []


def test_the_problem_detector_sees_console_errors_and_missing_files(page, live_server):
    """The control for the two tests above: an empty problem list means something."""
    page.goto(f"{live_server.url}/login/")
    page.evaluate("console.error('boom')")
    page.evaluate("fetch('/static/missing.js')")
    page.wait_for_timeout(300)

    assert "console: boom" in page.problems.items
    assert any(item.startswith("HTTP 404") for item in page.problems.items)
