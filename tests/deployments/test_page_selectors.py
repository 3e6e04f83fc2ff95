"""The reads the deployment pages make: the current team's deployments, targets, and what serves now."""

from apps.deployments import selectors
from apps.deployments.models import Deployment
from apps.registry.services import alias_set
from tests.factories import dataset_with_version, model_with_version


def test_team_deployments_are_the_current_teams_only(world, iris_deployment):
    assert list(selectors.team_deployments(world.bob, world.acme)) == [iris_deployment]
    assert list(selectors.team_deployments(world.charlie, world.globex)) == []
    assert list(selectors.team_deployments(world.charlie, world.acme)) == []  # not his team
    assert list(selectors.team_deployments(world.dave, None)) == []


def test_targets_are_the_ready_versions_and_aliases_of_the_teams_models(world, iris_model):
    model, version = iris_model
    alias_set(actor=world.bob, model=model, name="production", version=version)
    globex_data = dataset_with_version(world.globex, bundled="iris", name="iris", creator=world.charlie)[1]
    model_with_version(world.globex, globex_data, name="globex-mlp", creator=world.charlie)

    versions, aliases = selectors.deployment_targets(world.acme)

    assert versions == [version]
    assert [(a.model, a.name) for a in aliases] == [(model, "production")]
    assert selectors.deployment_targets(world.acme, model) == (versions, aliases)


def test_serving_version_follows_the_alias_and_is_none_while_it_is_unset(world, iris_model, iris_deployment):
    model, version = iris_model
    follower = Deployment.objects.create(team=world.acme, name="follower", model=model, alias="production")

    assert selectors.serving_version_or_none(iris_deployment) == version
    assert selectors.serving_version_or_none(follower) is None
    alias_set(actor=world.bob, model=model, name="production", version=version)
    assert selectors.serving_version_or_none(follower) == version
