"""The login form, the admin's and the token API lock a username, or an address, out after
repeated failures (django-axes), and tell the person why and for how long.

Alice is the target. Charlie (Globex) is the outsider: Alice's lockout must not lock him out.
"""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.utils import timezone

from apps.accounts.models import ApiToken
from tests.factories import PASSWORD, bearer

LOGIN_URL = "/login/"
TOKENS_URL = "/api/v1/auth/tokens/"
LIMIT = 10  # LEPTON_LOGIN_FAILURE_LIMIT's default
LOCKED_TEXT = "Too many failed logins for this username or from this address"


def _log_in(client, username, password=PASSWORD, address="203.0.113.7", **headers):
    return client.post(LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def _fail_as_alice_from_many_addresses(client, times=LIMIT):
    statuses = [_log_in(client, "alice", "guess", address=f"198.51.100.{n}").status_code for n in range(times)]
    # The try that reaches the limit is already answered with the lockout.
    assert statuses == [200] * min(times, LIMIT - 1) + [429] * (times - LIMIT + 1)


def test_a_username_is_locked_out_after_repeated_failures_from_any_addresses(client, world):
    _fail_as_alice_from_many_addresses(client)

    response = _log_in(client, "alice", address="192.0.2.50")  # the right password, a fresh address

    assert response.status_code == 429
    assert LOCKED_TEXT in response.content.decode()
    assert "15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_one_failure_short_of_the_limit_still_logs_in(client, world):
    _fail_as_alice_from_many_addresses(client, times=LIMIT - 1)

    response = _log_in(client, "alice", address="192.0.2.50")

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(world.alice.pk)


def test_an_address_is_locked_out_after_failures_for_many_usernames(client, world):
    for n in range(LIMIT):
        _log_in(client, f"nobody{n}", "guess", address="203.0.113.7")

    from_that_address = _log_in(client, "charlie", address="203.0.113.7")
    from_elsewhere = _log_in(client, "charlie", address="192.0.2.50")

    assert from_that_address.status_code == 429
    assert LOCKED_TEXT in from_that_address.content.decode()
    assert from_elsewhere.status_code == 302


def test_rotating_x_forwarded_for_does_not_escape_the_address_lockout(client, world):
    for n in range(LIMIT):
        _log_in(client, f"nobody{n}", "guess", address="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")

    response = _log_in(client, "charlie", address="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.99")

    assert response.status_code == 429


def test_behind_a_configured_proxy_the_lockout_counts_the_forwarded_address(client, world, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = "10.0.0.2"
    for n in range(LIMIT):
        _log_in(client, f"nobody{n}", "guess", address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.1")

    guesser = _log_in(client, "charlie", address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.1")
    someone_else = _log_in(client, "charlie", address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.2")

    assert guesser.status_code == 429
    assert someone_else.status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, world):
    _fail_as_alice_from_many_addresses(client)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    response = _log_in(client, "alice", address="192.0.2.50")

    assert response.status_code == 302


def test_the_outsider_still_logs_in_while_alice_is_locked_out(client, world):
    _fail_as_alice_from_many_addresses(client)

    response = _log_in(client, "charlie", address="192.0.2.50")

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(world.charlie.pk)


def test_the_token_api_refuses_a_locked_out_username_with_the_error_shape(client, api, world):
    _fail_as_alice_from_many_addresses(client)

    response = api.post(TOKENS_URL, {"username": "alice", "password": PASSWORD}, format="json", REMOTE_ADDR="192.0.2.9")

    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "locked_out"
    assert LOCKED_TEXT in error["message"]
    assert not ApiToken.objects.exists()


def test_failures_through_the_token_api_count_toward_the_form_lockout(client, api, world):
    for n in range(LIMIT):
        guess = {"username": "alice", "password": "guess"}
        assert api.post(TOKENS_URL, guess, format="json", REMOTE_ADDR=f"198.51.100.{n}").status_code == 401

    assert _log_in(client, "alice", address="192.0.2.50").status_code == 429


def test_an_existing_api_token_keeps_working_during_a_lockout(client, api, world):
    headers = bearer(world.alice)
    _fail_as_alice_from_many_addresses(client)

    api.credentials(**headers)
    response = api.get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_the_admin_login_shares_the_lockout(client, world):
    _fail_as_alice_from_many_addresses(client)

    response = client.post("/admin/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="192.0.2.50")

    assert response.status_code == 429


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_successful_login_forgets_earlier_failures(client, world, attempts):
    for n in range(attempts):
        _log_in(client, "alice", "guess", address=f"198.51.100.{n}")
    assert _log_in(client, "alice", address="192.0.2.50").status_code == 302
    client.logout()

    _fail_as_alice_from_many_addresses(client, times=LIMIT - 1)

    assert _log_in(client, "alice", address="192.0.2.51").status_code == 302
