"""Settings come from the environment; production refuses an insecure start."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x7Qp2-vN9_rT4kLm8sWz1yHb6cJd3fGa0eUo5iKn7MqRtYvXwBzCsDfEgHjKlPo",
    "ALLOWED_HOSTS": "lepton.example.com",
}


def _manage(*args, env_overrides: dict, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "REDIS_URL"}}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_check_deploy_is_clean_with_production_values():
    result = _manage("check", "--deploy", "--fail-level", "DEBUG", env_overrides=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "secret",
    [
        None,
        "lepton-development-key-public-and-insecure-never-use-it-in-production",
        "short",
        "django-insecure-" + "a" * 50,
    ],
)
def test_production_refuses_to_start_without_a_real_secret_key(secret):
    env = {**PRODUCTION_ENV}
    env.pop("SECRET_KEY")
    if secret is not None:
        env["SECRET_KEY"] = secret

    result = _manage("check", env_overrides=env)

    assert result.returncode != 0
    assert "SECRET_KEY must be set to a random value" in result.stderr


def test_a_bad_boolean_names_the_variable():
    result = _manage("check", env_overrides={"DEBUG": "maybe"})

    assert result.returncode != 0
    assert "DEBUG must be one of" in result.stderr


SHOW_SETTINGS = (
    "from django.conf import settings as s; import json; "
    "print(json.dumps({'q': s.Q_CLUSTER, 'cache': s.CACHES['default']['BACKEND'], "
    "'db': s.DATABASES['default']['ENGINE'], 'options': s.DATABASES['default'].get('OPTIONS', {})}, default=str))"
)


def _settings_with(env: dict) -> dict:
    result = _manage("shell", "-c", SHOW_SETTINGS, env_overrides=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_defaults_are_sqlite_with_wal_and_the_orm_broker(tmp_path):
    shown = _settings_with({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})

    assert shown["db"] == "django.db.backends.sqlite3"
    assert "journal_mode=WAL" in shown["options"]["init_command"]
    assert shown["options"]["transaction_mode"] == "IMMEDIATE"
    assert shown["q"]["orm"] == "default"
    assert "redis" not in shown["q"]
    assert shown["q"]["retry"] > shown["q"]["timeout"]


def test_redis_url_switches_the_broker_and_cache_to_redis():
    shown = _settings_with({"REDIS_URL": "redis://127.0.0.1:6379/3"})

    assert shown["q"]["redis"] == "redis://127.0.0.1:6379/3"
    assert "orm" not in shown["q"]
    assert shown["cache"] == "django.core.cache.backends.redis.RedisCache"


def test_database_url_selects_postgresql():
    shown = _settings_with({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/lepton"})

    assert shown["db"] == "django.db.backends.postgresql"


SHOW_PROXIES = "from django.conf import settings as s; print(s.REST_FRAMEWORK.get('NUM_PROXIES'))"


def test_forwarded_headers_are_ignored_unless_proxies_are_configured():
    default = _manage("shell", "-c", SHOW_PROXIES, env_overrides={})
    behind_two = _manage("shell", "-c", SHOW_PROXIES, env_overrides={"LEPTON_NUM_PROXIES": "2"})

    assert default.stdout.strip().splitlines()[-1] == "0"
    assert behind_two.stdout.strip().splitlines()[-1] == "2"


def test_a_negative_proxy_count_names_the_variable():
    result = _manage("check", env_overrides={"LEPTON_NUM_PROXIES": "-1"})

    assert result.returncode != 0
    assert "LEPTON_NUM_PROXIES must be 0 or more" in result.stderr
