import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import ApiToken, Membership
from apps.accounts.tokens import token_create
from tests.factories import PASSWORD, UserFactory
from tests.queries import assert_queries_constant

TOKENS_URL = "/api/v1/auth/tokens/"
ME_URL = "/api/v1/me/"


def _create_with_password(api, username, password=PASSWORD, **extra):
    return api.post(TOKENS_URL, {"username": username, "password": password, **extra}, format="json")


def _as(api, secret):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


def test_token_endpoint_issues_a_token_for_username_and_password(api, world):
    response = _create_with_password(api, "alice", name="ci")

    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("lep_")
    assert body["name"] == "ci"
    assert body["prefix"] == body["token"][:12]
    me = _as(api, body["token"]).get(ME_URL)
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert {t["slug"]: t["role"] for t in me.json()["teams"]} == {"acme": "owner"}


def test_only_a_hash_of_the_token_is_stored(api, world):
    secret = _create_with_password(api, "alice").json()["token"]

    row = ApiToken.objects.values().get(user=world.alice)
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    stored_text = " ".join(str(value) for value in row.values())
    assert secret not in stored_text
    assert secret[12:] not in stored_text  # nothing beyond the display prefix


def test_wrong_password_is_refused_with_the_error_shape(api, world):
    response = _create_with_password(api, "alice", password="wrong")

    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "authentication_failed", "message": "Invalid username or password.", "fields": {}}
    }
    assert not ApiToken.objects.exists()


def test_missing_credentials_name_each_field(api, world):
    response = api.post(TOKENS_URL, {}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"username", "password"}
    assert "username: This field is required." in error["message"]


def test_expiry_in_the_past_is_refused(api, world):
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = _create_with_password(api, "alice", expires_at=past)

    assert response.status_code == 400
    assert "expires_at" in response.json()["error"]["fields"]
    assert not ApiToken.objects.exists()


def test_token_endpoint_is_throttled(api, world):
    statuses = [_create_with_password(api, "alice", password="guess").status_code for _ in range(11)]

    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    response = _create_with_password(api, "alice")
    assert response.json()["error"]["code"] == "throttled"
    assert "Retry-After" in response


def test_a_bearer_token_records_its_last_use(api, world):
    token, secret = token_create(user=world.alice, name="script")
    assert token.last_used_at is None

    assert _as(api, secret).get(ME_URL).status_code == 200

    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_token_fails_on_the_very_next_request(api, world):
    token, secret = token_create(user=world.alice, name="script")
    client = _as(api, secret)
    assert client.get(ME_URL).status_code == 200

    assert client.delete(f"{TOKENS_URL}{token.pk}/").status_code == 204

    response = client.get(ME_URL)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This token has been revoked."


def test_expired_token_fails_on_the_very_next_request(api, world):
    token, secret = token_create(user=world.alice, name="short", expires_at=timezone.now() + timedelta(hours=1))
    client = _as(api, secret)
    assert client.get(ME_URL).status_code == 200

    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.get(ME_URL)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This token has expired."


def test_member_removed_from_team_loses_access_on_the_very_next_request(api, world):
    _, secret = token_create(user=world.bob, name="bob's script")
    client = _as(api, secret)
    assert client.get("/api/v1/teams/acme/").status_code == 200

    Membership.objects.filter(user=world.bob, team=world.acme).delete()

    assert client.get("/api/v1/teams/acme/").status_code == 404
    assert client.get("/api/v1/teams/").json()["results"] == []


def test_token_of_an_inactive_user_fails(api, world):
    _, secret = token_create(user=world.bob, name="script")
    world.bob.is_active = False
    world.bob.save()

    assert _as(api, secret).get(ME_URL).status_code == 401


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer lep_nonsense", "Bearer \xff"])
def test_malformed_or_unknown_bearer_header_is_401(api, world, header):
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get(ME_URL)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_token_list_shows_only_your_tokens_and_never_secrets(api, world):
    token_create(user=world.charlie, name="charlie's")
    _, secret = token_create(user=world.alice, name="mine")

    body = _as(api, secret).get(TOKENS_URL).json()

    assert [t["name"] for t in body["results"]] == ["mine"]
    assert "token" not in body["results"][0]
    assert "key_hash" not in body["results"][0]


def test_token_list_filters_revoked(api, world):
    _, secret = token_create(user=world.alice, name="active")
    old, _ = token_create(user=world.alice, name="old")
    client = _as(api, secret)
    client.delete(f"{TOKENS_URL}{old.pk}/")

    assert [t["name"] for t in client.get(TOKENS_URL, {"revoked": "true"}).json()["results"]] == ["old"]
    assert [t["name"] for t in client.get(TOKENS_URL, {"revoked": "false"}).json()["results"]] == ["active"]


def test_token_list_queries_do_not_grow_with_rows(api, world):
    _, secret = token_create(user=world.alice, name="first")
    client = _as(api, secret)

    def add_tokens():
        for n in range(10):
            token_create(user=world.alice, name=f"t{n}")

    assert_queries_constant(lambda: client.get(TOKENS_URL), add_tokens, at_most=4)


def test_tokens_page_shows_the_secret_once(page_as, world):
    client = page_as(world.alice)

    created = client.post("/tokens/", {"name": "laptop", "expires_in_days": "30"})

    assert created.status_code == 200
    token = ApiToken.objects.get(user=world.alice)
    secret = created.context["new_secret"]
    assert secret.startswith("lep_")
    assert secret.encode() in created.content
    assert token.expires_at > timezone.now() + timedelta(days=29)
    listing = client.get("/tokens/")
    assert secret.encode() not in listing.content
    assert token.prefix.encode() in listing.content


def test_tokens_page_refuses_a_blank_name(page_as, world):
    response = page_as(world.alice).post("/tokens/", {"name": ""})

    assert response.status_code == 400
    assert b"Name: This field is required." in response.content
    assert not ApiToken.objects.exists()


def test_tokens_page_revokes(page_as, world):
    token, _ = token_create(user=world.alice, name="old")

    response = page_as(world.alice).post(f"/tokens/{token.pk}/revoke/")

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_other_users_cannot_see_the_tokens_page_of_someone_else(page_as, world):
    token_create(user=world.alice, name="alice-secret-name")

    response = page_as(UserFactory(username="eve")).get("/tokens/")

    assert b"alice-secret-name" not in response.content
