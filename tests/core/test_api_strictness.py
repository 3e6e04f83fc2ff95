"""Every GET of the API refuses what it does not read, and odd input is a 4xx in the error shape, never a 500.

The operations come from the OpenAPI schema, so a new list or endpoint is covered the day it
is added; they are called on Charlie's real objects (tests/core/estate.py), built once per
test (a model is trained, evaluated and exported), so each test walks all operations and
reports every one that fails. Other teams only ever get 404s for them (tests/test_tenancy.py).
"""

import re

import pytest
from django.urls import resolve

from tests.core.estate import api_operations, build_estate, estate_values, fill, path_values
from tests.factories import bearer
from tests.tenancy import TENANT_ROUTES

OPERATIONS = api_operations()
GETS = [op for op in OPERATIONS if op.method == "GET"]
ORDERED_LISTS = [op for op in GETS if "ordering" in op.query_params]
TWENTY_DIGITS = "9" * 20


@pytest.fixture
def estate(world):
    return build_estate(world)


@pytest.fixture
def charlie_get(client, world):
    headers = bearer(world.charlie)
    return lambda url: client.get(url, **headers)


def _url(operation, estate) -> str:
    return fill(operation.template, path_values(operation.template, estate))


def test_the_walk_covers_every_list_and_fills_every_path_from_a_real_object(world, estate):
    templates = {op.template for op in GETS}
    unfilled = [
        op.template
        for op in OPERATIONS
        if "{" in op.template and "/nodes/" not in op.template and estate_values(op.template, estate) is None
    ]

    assert {"/api/v1/architectures/", "/api/v1/teams/{slug}/usage/", "/api/v1/jobs/{id}/logs/"} <= templates
    assert len(ORDERED_LISTS) >= 10
    assert unfilled == []  # nodes are shared and none exist here: any id reaches their views


def test_ordering_with_a_doubled_minus_is_400_naming_ordering_on_every_list(estate, charlie_get):
    answers = {op.template: charlie_get(f"{_url(op, estate)}?ordering=--created_at,--name") for op in ORDERED_LISTS}

    wrong = {t: (r.status_code, r.content[:120]) for t, r in answers.items() if r.status_code != 400}
    assert wrong == {}
    assert all("ordering" in r.json()["error"]["fields"] for r in answers.values())


def test_ordering_descending_by_each_listed_field_still_works_on_every_list(estate, charlie_get):
    wrong = {}
    for op in ORDERED_LISTS:
        url = _url(op, estate)
        for field in resolve(url).func.cls.ordering_fields:
            response = charlie_get(f"{url}?ordering=-{field},{field}")
            if response.status_code != 200:
                wrong[f"{op.template} -{field}"] = (response.status_code, response.content[:120])

    assert wrong == {}


def test_every_get_refuses_an_unknown_query_parameter_by_name(estate, charlie_get):
    answers = {op.template: charlie_get(f"{_url(op, estate)}?no_such_parameter=1") for op in GETS}

    wrong = {t: r.status_code for t, r in answers.items() if r.status_code != 400}
    assert wrong == {}
    assert all(list(r.json()["error"]["fields"]) == ["no_such_parameter"] for r in answers.values())


def test_no_documented_query_parameter_is_refused_as_unknown(estate, charlie_get):
    """The control of the test above: what the schema documents for an operation, it reads."""
    refused = {}
    for op in GETS:
        response = charlie_get(f"{_url(op, estate)}?" + "&".join(f"{name}=" for name in sorted(op.query_params)))
        fields = response.json()["error"]["fields"] if response.status_code == 400 else {}
        unknown = [name for name, errors in fields.items() if any("Unknown query parameter" in e for e in errors)]
        if unknown:
            refused[op.template] = unknown

    assert refused == {}


def _oversized_variants(url: str) -> list[str]:
    """The URL with each of its integer segments in turn replaced by a 20-digit one."""
    return [url[: m.start(1)] + TWENTY_DIGITS + url[m.end(1) :] for m in re.finditer(r"/(\d+)(?=/|$)", url)]


def test_a_twenty_digit_id_answers_404_on_every_object_route(client, world):
    api_headers = bearer(world.charlie)
    client.force_login(world.charlie)
    wrong = []
    for route in TENANT_ROUTES:
        method = "GET" if "GET" in route.methods else route.methods[0]
        for url in _oversized_variants(route.url(world)):
            response = client.generic(method, url, **(api_headers if route.is_api else {}))
            shaped = not route.is_api or response.json().get("error", {}).get("code") == "not_found"
            if response.status_code != 404 or not shaped:
                wrong.append((method, url, response.status_code))

    assert wrong == []
