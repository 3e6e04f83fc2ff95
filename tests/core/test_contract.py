"""The contract test: every operation of the OpenAPI schema, called with generated input on real
objects, answers no 5xx and nothing its schema does not describe.

schemathesis generates the requests from the schema (a few examples per operation, derandomized
so CI runs the same ones) and validates each response: no server error, the documented content
type and a body that validates against the documented schema. The WSGI app runs in this
process on the test database, each example inside a savepoint rolled back after it, so every
example meets the same estate (tests/core/estate.py) and a DELETE cannot take it from the next.
The test's own token is not one the estate's URLs name, so no generated revoke can end the run.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from apps.accounts.models import Role
from tests.core.estate import build_estate, openapi_schema, path_values
from tests.factories import bearer, member

EXAMPLES_PER_OPERATION = 4
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


@pytest.fixture
def in_process_app():
    """Django's WSGI app on the test's own connection: Django's test client unhooks the same signals."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def estate_urls(world):
    urls = build_estate(world)
    # Members are addressed through Gina, so a generated DELETE removes her, not Charlie, whose token runs the test.
    member(world.globex, "gina", Role.MEMBER)
    return [url.replace("/members/charlie/", "/members/gina/") for url in urls]


def _run_operation(operation, urls, headers, failures, statuses):
    values = path_values(operation.path, urls)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        case.path_parameters = {**case.path_parameters, **values}
        with transaction.atomic():
            try:
                response = case.call_and_validate(headers=headers, checks=CHECKS)
                statuses.setdefault(operation.label, set()).add(response.status_code)
            except (Exception, BaseExceptionGroup) as failure:  # collected: one report of every operation that fails
                failures.setdefault(operation.label, str(failure)[:800])
            finally:
                transaction.set_rollback(True)

    check()


def test_every_operation_answers_within_its_schema(world, estate_urls, in_process_app, settings):
    settings.ALLOWED_HOSTS = ["*"]
    schema = schemathesis.openapi.from_dict(openapi_schema())
    schema.app = in_process_app
    headers = bearer(world.charlie, name="contract test")
    headers = {"Authorization": headers["HTTP_AUTHORIZATION"]}
    failures: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]

    for operation in operations:
        _run_operation(operation, estate_urls, headers, failures, statuses)

    assert len(operations) >= 60
    # The examples reached real objects: every GET but a node's answered 200 at least once.
    missed = [
        op.label
        for op in operations
        if op.method.upper() == "GET" and "/nodes/{" not in op.path and 200 not in statuses.get(op.label, set())
    ]
    assert missed == [], {label: sorted(statuses.get(label, ())) for label in missed}
    assert world.charlie.api_tokens.get(name="contract test").is_active  # the run never revoked its own token
    assert failures == {}, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
