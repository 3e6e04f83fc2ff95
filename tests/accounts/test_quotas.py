from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts import quotas
from apps.accounts.models import Plan, TeamQuota, UsageRecord
from apps.accounts.plans import plan_save, quota_clear_overrides, quota_move_to_plan
from apps.accounts.quotas import LiveUsage, check_quota, month_start, team_usage, usage_record
from apps.core.errors import QuotaExceeded

GIB = 1024**3


def _storage(team, amount, source):
    usage_record(team=team, kind=UsageRecord.Kind.STORAGE_BYTES, amount=amount, source=source)


def test_a_new_team_starts_on_the_free_trial_plan(world):
    quota = world.acme.quota

    assert quota.plan.slug == "free-trial"
    assert quota.limit("storage_bytes") == 5 * GIB
    assert quota.limit("max_concurrent_gpus") == 1


def test_an_override_replaces_one_limit_and_the_plan_sets_the_rest(world):
    quota = world.acme.quota
    quota.storage_bytes = 50 * GIB
    quota.save()

    quota_move_to_plan(TeamQuota.objects.filter(pk=quota.pk), Plan.objects.get(slug="team"))
    quota.refresh_from_db()

    assert quota.limit("storage_bytes") == 50 * GIB  # the operator's override stays
    assert quota.limit("max_concurrent_gpus") == 8  # the rest came with the plan in one step
    quota_clear_overrides(TeamQuota.objects.filter(pk=quota.pk))
    quota.refresh_from_db()
    assert quota.limit("storage_bytes") == 500 * GIB


def test_storage_over_the_quota_is_refused_with_the_quota_in_the_message(world):
    _storage(world.acme, 4 * GIB, "dataset:1")

    with pytest.raises(QuotaExceeded) as refused:
        check_quota(world.acme, storage_bytes=2 * GIB)

    assert refused.value.limit == "storage_bytes"
    assert refused.value.message == "team quota: storage 4.0 GiB of 5.0 GiB used; this needs 2.0 GiB more"
    check_quota(world.acme, storage_bytes=GIB)  # exactly up to the limit passes


def test_freed_storage_counts_back(world):
    _storage(world.acme, 5 * GIB, "dataset:1")
    _storage(world.acme, -5 * GIB, "dataset:1:deleted")

    assert team_usage(world.acme).storage_bytes == 0
    check_quota(world.acme, storage_bytes=GIB)


def test_gpus_over_the_quota_are_refused(world):
    with pytest.raises(QuotaExceeded) as refused:
        check_quota(world.acme, gpus=2)

    assert refused.value.message == "team quota: 0 of 1 GPUs in use; this needs 2 more"


def test_gpu_hours_count_this_calendar_month_only(world):
    usage_record(team=world.acme, kind=UsageRecord.Kind.GPU_SECONDS, amount=19 * 3600, source="job:1:attempt:1")
    old = usage_record(team=world.acme, kind=UsageRecord.Kind.GPU_SECONDS, amount=50 * 3600, source="job:0:attempt:1")
    assert old
    UsageRecord.objects.filter(source="job:0:attempt:1").update(created_at=month_start() - timedelta(seconds=1))

    assert team_usage(world.acme).gpu_hours == 19
    check_quota(world.acme, gpus=1)
    usage_record(team=world.acme, kind=UsageRecord.Kind.GPU_SECONDS, amount=3600, source="job:2:attempt:1")
    with pytest.raises(QuotaExceeded) as refused:
        check_quota(world.acme, gpus=1)
    assert refused.value.message == "team quota: 20 of 20 GPU-hours used this month"


def test_cpu_only_work_is_not_held_back_by_spent_gpu_hours(world):
    usage_record(team=world.acme, kind=UsageRecord.Kind.GPU_SECONDS, amount=100 * 3600, source="job:1:attempt:1")

    check_quota(world.acme, jobs=1)


def test_usage_is_recorded_exactly_once_per_source(world):
    first = usage_record(team=world.acme, kind=UsageRecord.Kind.GPU_SECONDS, amount=60, source="job:7:attempt:1")
    again = usage_record(team=world.acme, kind=UsageRecord.Kind.GPU_SECONDS, amount=60, source="job:7:attempt:1")

    assert (first, again) == (True, False)
    assert UsageRecord.objects.filter(source="job:7:attempt:1").count() == 1


def test_running_jobs_and_gpus_come_from_the_registered_live_usage_source(world, monkeypatch):
    monkeypatch.setattr(quotas, "_live_usage_sources", [])
    quotas.register_live_usage_source(lambda team_ids: {world.acme.pk: LiveUsage(gpus=1, running_jobs=2)})

    usage = team_usage(world.acme)

    assert (usage.gpus, usage.running_jobs) == (1, 2)
    with pytest.raises(QuotaExceeded) as refused:
        check_quota(world.acme, jobs=1)
    assert refused.value.message == "team quota: 2 of 2 running jobs"
    assert team_usage(world.globex).running_jobs == 0


def test_marking_a_plan_default_takes_the_mark_from_the_previous_one(db):
    team_plan = Plan.objects.get(slug="team")
    team_plan.is_default = True

    plan_save(team_plan)

    assert list(Plan.objects.filter(is_default=True).values_list("slug", flat=True)) == ["team"]


def test_month_start_is_the_first_instant_of_the_utc_month():
    now = timezone.now()
    start = month_start(now)

    assert (start.day, start.hour, start.minute, start.second) == (1, 0, 0, 0)
    assert start <= now
