"""Operators edit plans and quotas in the Django admin, with usage beside each limit."""

import pytest

from apps.accounts.models import Plan, TeamQuota, UsageRecord
from apps.accounts.quotas import usage_record
from tests.factories import TeamFactory, UserFactory
from tests.queries import assert_queries_constant

GIB = 1024**3


@pytest.fixture
def operator(client, db):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_quota_list_shows_usage_beside_each_limit(operator, world):
    usage_record(team=world.acme, kind=UsageRecord.Kind.STORAGE_BYTES, amount=int(3.2 * GIB), source="test:1")

    page = operator.get("/admin/accounts/teamquota/").content.decode()

    assert "3.2 GiB of 5.0 GiB" in page
    assert "0 of 1 GPUs" in page
    assert "0 of 20 GPU-hours" in page


def test_quota_list_marks_overrides(operator, world):
    TeamQuota.objects.filter(team=world.acme).update(max_concurrent_gpus=4)

    page = operator.get("/admin/accounts/teamquota/").content.decode()

    assert "0 of 4 GPUs (override)" in page


def test_quota_list_queries_do_not_grow_with_teams(operator, world):
    def add_teams():
        for n in range(6):
            TeamFactory(slug=f"bulk-{n}")

    assert_queries_constant(lambda: operator.get("/admin/accounts/teamquota/"), add_teams, at_most=20)


def test_quota_form_shows_the_plan_limit_and_usage_for_each_field(operator, world):
    usage_record(team=world.acme, kind=UsageRecord.Kind.STORAGE_BYTES, amount=GIB, source="test:1")
    quota = world.acme.quota

    page = operator.get(f"/admin/accounts/teamquota/{quota.pk}/change/").content.decode()

    assert "Plan Free trial: 5.0 GiB · used now: 1.0 GiB" in page
    assert "Plan Free trial: 1 · used now: 0" in page


def test_operator_overrides_one_limit_in_the_form(operator, world):
    quota = world.acme.quota
    form = {
        "plan": quota.plan.pk,
        "max_concurrent_gpus": "",
        "max_running_jobs": "",
        "gpu_hours_per_month": "",
        "storage_bytes": str(50 * GIB),
    }

    response = operator.post(f"/admin/accounts/teamquota/{quota.pk}/change/", form)

    assert response.status_code == 302
    quota.refresh_from_db()
    assert quota.limit("storage_bytes") == 50 * GIB
    assert quota.limit("max_concurrent_gpus") == 1


def test_move_to_plan_action_sets_all_limits_in_one_step(operator, world):
    team_plan = Plan.objects.get(slug="team")
    quota = world.acme.quota

    operator.post(
        "/admin/accounts/teamquota/",
        {"action": f"move_to_plan_{team_plan.pk}", "_selected_action": [quota.pk]},
    )

    quota.refresh_from_db()
    assert quota.plan == team_plan
    assert quota.limit("max_concurrent_gpus") == 8


def test_plan_admin_marks_one_default(operator, db):
    enterprise = Plan.objects.get(slug="enterprise")
    form = {
        "name": enterprise.name,
        "slug": enterprise.slug,
        "description": enterprise.description,
        "is_default": "on",
        "max_concurrent_gpus": enterprise.max_concurrent_gpus,
        "max_running_jobs": enterprise.max_running_jobs,
        "gpu_hours_per_month": enterprise.gpu_hours_per_month,
        "storage_bytes": enterprise.storage_bytes,
    }

    response = operator.post(f"/admin/accounts/plan/{enterprise.pk}/change/", form)

    assert response.status_code == 302
    assert list(Plan.objects.filter(is_default=True).values_list("slug", flat=True)) == ["enterprise"]


def test_team_created_in_the_admin_gets_a_quota(operator, db):
    response = operator.post(
        "/admin/accounts/team/add/",
        {
            "name": "Ops",
            "slug": "ops",
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    assert TeamQuota.objects.get(team__slug="ops").plan.slug == "free-trial"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/accounts/plan/",
        "/admin/accounts/team/",
        "/admin/accounts/apitoken/",
        "/admin/accounts/usagerecord/",
    ],
)
def test_admin_pages_render(operator, world, path):
    assert operator.get(path).status_code == 200
