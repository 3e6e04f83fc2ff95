"""Every main page, the API docs and the admin run under the Content-Security-Policy in real
Chromium with no violation and no console error (inline scripts and handlers would be refused)."""

import pytest

from apps.accounts.tokens import token_create
from tests.factories import PASSWORD, UserFactory, dataset_with_version, experiment_row, model_with_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _log_in(page, base, username):
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def _pages_of(world):
    _, version = dataset_with_version(world.acme, bundled="iris", name="iris", creator=world.alice)
    model, _, _ = model_with_version(world.acme, version, name="mlp", creator=world.alice)
    experiment = experiment_row(world.acme, model.versions.get(number=1), version)
    return [
        "/",
        "/datasets/",
        "/datasets/new/",
        f"/datasets/{version.dataset_id}/",
        "/models/",
        "/models/new/",
        (f"/models/{model.pk}/", CHART_DRAWN),
        f"/models/{model.pk}/versions/1/",
        "/jobs/",
        "/experiments/",
        "/experiments/new/",
        f"/experiments/{experiment.pk}/",
        "/nodes/",
        "/deployments/",
        "/teams/acme/",
        "/tokens/",
        ("/api/v1/docs/", SWAGGER_DRAWN),
        "/admin/",
        "/admin/accounts/team/",
        f"/admin/accounts/team/{world.acme.pk}/change/",
    ]


# What shows that a page's scripts really ran (a blocked script would leave it missing).
CHART_DRAWN = ".plotly-chart .main-svg"
SWAGGER_DRAWN = ".swagger-ui .info"


def _problems_on(page, base, url, ready=None):
    """Console errors and CSP violations (recorded by the `page` fixture) while `url` loads."""
    page.problems.items.clear()
    page.goto(f"{base}{url}")
    if ready:
        page.wait_for_selector(ready)
    page.wait_for_load_state("networkidle")  # every asset fetched: none left to abort by moving on
    return list(page.problems.items)


def test_every_page_runs_under_the_policy_without_a_violation(page, live_server, world):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    world.alice.is_staff = world.alice.is_superuser = True
    world.alice.save()
    urls = _pages_of(world)
    base = live_server.url

    assert _problems_on(page, base, "/login/") == []
    _log_in(page, base, "alice")
    problems = {}
    for entry in urls:
        url, ready = entry if isinstance(entry, tuple) else (entry, None)
        problems[url] = _problems_on(page, base, url, ready)

    assert {url: found for url, found in problems.items() if found} == {}


def test_the_policy_refuses_inline_scripts_and_other_origins(client, world):
    client.force_login(world.alice)

    policy = client.get("/")["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if " " in part.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"].startswith("'self'")
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert "'unsafe-inline'" not in directives["style-src"]
    assert directives["style-src-attr"] == "'unsafe-inline'"  # Plotly's style attributes only (see settings)
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"


def test_confirmations_and_copy_work_without_inline_handlers(page, live_server, world, browser_context):
    token, _ = token_create(user=world.alice, name="ci <pipeline>")
    base = live_server.url
    _log_in(page, base, "alice")
    page.goto(f"{base}/tokens/")
    dialogs = []

    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.click(f'tr[data-token="{token.pk}"] button[type=submit]')
    page.wait_for_function("document.readyState === 'complete'")
    token.refresh_from_db()
    assert dialogs == ["Revoke ci <pipeline>? Scripts using it stop working at once."]
    assert token.revoked_at is None

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click(f'tr[data-token="{token.pk}"] button[type=submit]')
    token.refresh_from_db()
    assert token.revoked_at is not None

    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.fill("#id_name", "laptop")
    with page.expect_navigation():
        page.click("#token-form button[type=submit]")
    page.click("[data-copy-from=new-token-value]")
    page.wait_for_function("navigator.clipboard.readText().then(t => t.startsWith('lep_'))")
    assert page.evaluate("navigator.clipboard.readText()") == page.input_value("#new-token-value")
    assert page.problems.items == []
