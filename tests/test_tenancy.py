"""Every object route answers 404 to other teams and 401/login without auth (see tests/tenancy.py)."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import bearer
from tests.tenancy import EXEMPT_ROUTES, TENANT_ROUTES

CASES = [
    pytest.param(route, method, id=f"{route.name}-{method}") for route in TENANT_ROUTES for method in route.methods
]


def _request(client, method, url, **extra):
    return getattr(client, method.lower())(url, **extra)


@pytest.mark.parametrize(("route", "method"), CASES)
def test_other_teams_object_answers_404(client, world, route, method):
    url = route.url(world)
    if route.is_api:
        response = _request(client, method, url, **bearer(world.alice), content_type="application/json")
        assert response.json()["error"]["code"] == "not_found"
    else:
        client.force_login(world.alice)
        response = _request(client, method, url)
    assert response.status_code == 404


@pytest.mark.parametrize(("route", "method"), CASES)
def test_object_route_requires_authentication(client, world, route, method):
    url = route.url(world)
    response = _request(client, method, url, content_type="application/json")
    if route.is_api:
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
    else:
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


@pytest.mark.parametrize(("route", "method"), CASES)
def test_owning_team_gets_an_answer_other_than_404(client, world, route, method):
    """The control: the route does exist for its own team, so the 404 above means something."""
    url = route.url(world)
    if route.is_api:
        response = _request(client, method, url, **bearer(world.charlie), content_type="application/json")
    else:
        client.force_login(world.charlie)
        response = _request(client, method, url)
    assert response.status_code != 404
    if method == "GET":
        assert response.status_code == 200


def _object_routes(patterns=None, namespace="", inherited_params=False):
    """(name, has parameters) of every named URL in the project."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        has_params = inherited_params or bool(entry.pattern.regex.groups)
        if isinstance(entry, URLResolver):
            child_ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _object_routes(entry.url_patterns, child_ns, has_params)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", has_params


def _is_exempt(name: str) -> bool:
    return any(name == rule or (rule.endswith(":*") and name.startswith(rule[:-1])) for rule in EXEMPT_ROUTES)


def test_every_object_route_is_registered():
    registered = {route.name for route in TENANT_ROUTES}
    missing = sorted(
        name for name, has_params in _object_routes() if has_params and name not in registered and not _is_exempt(name)
    )
    assert missing == [], f"add these routes to tests/tenancy.py TENANT_ROUTES: {missing}"
