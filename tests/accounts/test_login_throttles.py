"""Password guessing is limited by the client's real address, whatever X-Forwarded-For says.

Alice is the target; the guesser has no account. Charlie (Globex) is the outsider whose own
login must not suffer from Acme's guesser beyond the shared address rule.
"""

import pytest

from apps.core.client_address import client_address

TOKENS_URL = "/api/v1/auth/tokens/"
TOKEN_RATE = 10  # LEPTON_TOKEN_CREATE_RATE's default, per minute


def _guess(api, forwarded_for: str, remote_addr: str = "203.0.113.7", username: str = "alice"):
    return api.post(
        TOKENS_URL,
        {"username": username, "password": "guess"},
        format="json",
        HTTP_X_FORWARDED_FOR=forwarded_for,
        REMOTE_ADDR=remote_addr,
    )


@pytest.fixture
def behind_one_proxy(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def test_rotating_x_forwarded_for_does_not_escape_the_token_throttle(api, world):
    statuses = [_guess(api, f"198.51.100.{n}").status_code for n in range(TOKEN_RATE + 1)]

    assert statuses[:TOKEN_RATE] == [401] * TOKEN_RATE
    assert statuses[TOKEN_RATE] == 429


def test_without_proxies_the_client_address_is_remote_addr(rf):
    request = rf.get("/", HTTP_X_FORWARDED_FOR="198.51.100.1", REMOTE_ADDR="203.0.113.7")

    assert client_address(request) == "203.0.113.7"


def test_behind_a_configured_proxy_the_address_it_forwarded_is_used(rf, behind_one_proxy):
    # The client wrote "1.2.3.4"; our proxy appended the address it really saw.
    request = rf.get("/", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.1", REMOTE_ADDR="10.0.0.2")

    assert client_address(request) == "198.51.100.1"


def test_behind_a_configured_proxy_each_forwarded_address_has_its_own_bucket(api, world, behind_one_proxy):
    # Every request comes from the proxy (one REMOTE_ADDR); the throttle counts per forwarded client.
    first_client = [_guess(api, "198.51.100.1", remote_addr="10.0.0.2").status_code for _ in range(TOKEN_RATE + 1)]
    # (another username: Alice's own is locked out by now, see test_login_lockout)
    other_client = _guess(api, "198.51.100.2", remote_addr="10.0.0.2", username="bob")

    assert first_client[TOKEN_RATE] == 429
    assert other_client.status_code == 401


def test_behind_a_configured_proxy_a_client_written_prefix_does_not_escape(api, world, behind_one_proxy):
    statuses = [
        _guess(api, f"192.0.2.{n}, 198.51.100.1", remote_addr="10.0.0.2").status_code for n in range(TOKEN_RATE + 1)
    ]

    assert statuses[TOKEN_RATE] == 429
