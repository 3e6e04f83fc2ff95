"""The API's common ground: one error shape, the schema, offline docs."""

import re

from django.core.management import call_command
from django.test import RequestFactory

from apps.core.views import server_error


def test_unknown_api_path_answers_the_json_error_shape(api_as, world):
    response = api_as(world.alice).get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_method_not_allowed_uses_the_error_shape(api_as, world):
    response = api_as(world.alice).put("/api/v1/teams/acme/", {}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_malformed_json_uses_the_error_shape(api_as, world):
    response = api_as(world.alice).generic("POST", "/api/v1/teams/", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_server_errors_under_the_api_answer_json():
    response = server_error(RequestFactory().get("/api/v1/teams/"))

    assert response.status_code == 500
    assert b'"code": "server_error"' in response.content


def test_the_openapi_schema_validates(tmp_path, db):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    schema = target.read_text()
    for path in ["/api/v1/auth/tokens/", "/api/v1/teams/{slug}/", "/api/v1/teams/{team_slug}/members/"]:
        assert f"{path}:" in schema
    assert "bearerAuth" in schema


def test_the_schema_and_docs_are_served_without_any_outside_asset(client, db):
    schema = client.get("/api/v1/schema/")
    docs = client.get("/api/v1/docs/")

    assert schema.status_code == docs.status_code == 200
    html = docs.content.decode()
    assert re.findall(r"""(?:src|href)=["'](https?:)?//""", html) == []
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
