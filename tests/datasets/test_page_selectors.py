"""The dataset list page's read: the current team's datasets, none without a team."""

from apps.datasets.selectors import team_datasets
from tests.factories import dataset_with_version


def test_team_datasets_are_the_current_teams_only(world):
    acme = dataset_with_version(world.acme, name="iris")[0]
    dataset_with_version(world.globex, name="wine", bundled="wine")

    assert [d.name for d in team_datasets(world.bob, world.acme)] == [acme.name]
    assert list(team_datasets(world.charlie, world.acme)) == []  # not his team
    assert list(team_datasets(world.dave, None)) == []
