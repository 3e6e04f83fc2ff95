"""Every team has a quota row: made when the team is, and a team without one is on the default plan."""

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts import quotas
from apps.accounts.models import Membership, Role, Team, TeamQuota
from apps.datasets.models import Dataset
from tests.factories import UserFactory

CSV = b"a,b,species\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n"


def _team_without_factory(slug: str) -> Team:
    """A team made the plain way (a shell, a data migration, an old row): no factory adds its quota."""
    return Team.objects.create(slug=slug, name=slug.title())


def test_a_team_gets_its_quota_row_when_it_is_created(db):
    team = _team_without_factory("initech")

    assert TeamQuota.objects.get(team=team).plan.is_default


def test_a_team_whose_quota_row_is_missing_is_on_the_default_plan(db):
    team = _team_without_factory("hooli")
    TeamQuota.objects.filter(team=team).delete()

    quota = quotas.team_quota(Team.objects.get(pk=team.pk))

    assert quota.plan.is_default
    quotas.check_quota(team, storage_bytes=1)  # no DoesNotExist: the default plan's limits apply


def test_upload_to_a_team_without_a_quota_row_is_accepted(db, api_as):
    team = _team_without_factory("umbrella")
    TeamQuota.objects.filter(team=team).delete()
    user = UserFactory(username="wesker")
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    dataset = Dataset.objects.create(team=team, name="flowers", task="tabular_classification", created_by=user)

    response = api_as(user).post(
        f"/api/v1/datasets/{dataset.pk}/versions/",
        {"file": SimpleUploadedFile("flowers.csv", CSV), "label_column": "species"},
        format="multipart",
    )

    assert response.status_code == 202, response.content
    assert TeamQuota.objects.get(team=team).plan.is_default


def test_team_page_and_api_detail_of_a_team_without_a_quota_row(db, api_as, page_as):
    team = _team_without_factory("stark")
    TeamQuota.objects.filter(team=team).delete()
    user = UserFactory(username="tony")
    Membership.objects.create(team=team, user=user, role=Role.OWNER)

    detail = api_as(user).get("/api/v1/teams/stark/")
    page = page_as(user).get("/teams/stark/")

    assert detail.status_code == 200, detail.content
    assert detail.json()["quota"]["plan"]["slug"] == TeamQuota.objects.get(team=team).plan.slug
    assert page.status_code == 200


def test_the_data_migration_gives_existing_teams_without_a_row_one_on_the_default_plan(db):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("apps.accounts.migrations.0004_quota_for_every_team")
    old = _team_without_factory("cyberdyne")
    TeamQuota.objects.filter(team=old).delete()
    kept = TeamQuota.objects.get(team=_team_without_factory("tyrell"))

    migration.add_missing_quotas(apps, schema_editor=None)

    assert TeamQuota.objects.get(team=old).plan.is_default
    assert TeamQuota.objects.get(team__slug="tyrell").pk == kept.pk  # rows that exist are left alone
