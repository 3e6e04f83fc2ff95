"""Deployment services: roles, targets, names, keys; what serves a request and when it switches."""

import pytest

from apps.core.errors import ApplicationError, AuthenticationFailed, Conflict, NotFound, PermissionDenied
from apps.deployments import services
from apps.deployments.models import Deployment, DeploymentKey
from apps.registry.services import alias_set
from tests.factories import model_with_version


def test_member_deploys_a_version_and_the_deployment_joins_the_models_team(world, iris_model):
    model, version = iris_model
    deployment = services.deployment_create(actor=world.bob, model=model, name=" iris-prod ", version=version)
    assert (deployment.team, deployment.name, deployment.version, deployment.alias) == (
        world.acme,
        "iris-prod",
        version,
        "",
    )
    assert deployment.created_by == world.bob
    assert services.serving_version(deployment) == version


def test_viewer_cannot_deploy_and_an_outsider_cannot_see_the_team(world, iris_model):
    model, version = iris_model
    with pytest.raises(PermissionDenied, match="must be a member of team 'acme'"):
        services.deployment_create(actor=world.vera, model=model, name="x", version=version)
    with pytest.raises(NotFound):
        services.deployment_create(actor=world.charlie, model=model, name="x", version=version)
    assert not Deployment.objects.exists()


def test_a_target_is_exactly_one_ready_version_of_the_model_or_one_of_its_aliases(world, iris, iris_model):
    model, version = iris_model
    other_model, other_version, _ = model_with_version(world.acme, iris, name="other", creator=world.bob)
    cases = [
        ({}, "version: name either a version to serve or an alias to follow, not both."),
        ({"version": version, "alias": "production"}, "name either a version"),
        ({"version": other_version}, "version: not a version of model iris-mlp."),
        ({"alias": "production"}, "alias: model iris-mlp has no alias 'production'; set it first."),
        ({"alias": "Bad Alias!"}, "alias: an alias is 1-50 letters"),
    ]
    for target, message in cases:
        with pytest.raises(ApplicationError, match=message.replace("(", r"\(").replace("[", r"\[")) as caught:
            services.deployment_create(actor=world.bob, model=model, name="x", **target)
        assert caught.value.status_code == 400
    version.status = "processing"
    with pytest.raises(ApplicationError, match="v1 is processing; only ready versions can be served"):
        services.deployment_create(actor=world.bob, model=model, name="x", version=version)


def test_names_are_unique_in_a_team(world, iris_model):
    model, version = iris_model
    services.deployment_create(actor=world.bob, model=model, name="iris", version=version)
    with pytest.raises(Conflict, match="already has a deployment named 'iris'") as caught:
        services.deployment_create(actor=world.alice, model=model, name="iris", version=version)
    assert caught.value.fields == {"name": ["Already taken."]}
    with pytest.raises(ApplicationError, match="a deployment needs a name"):
        services.deployment_create(actor=world.bob, model=model, name="  ", version=version)


def test_an_alias_is_resolved_at_request_time(world, iris, iris_model):
    model, v1 = iris_model
    alias_set(actor=world.bob, model=model, name="production", version=v1)
    deployment = services.deployment_create(actor=world.bob, model=model, name="iris", alias="production")
    assert services.serving_version(deployment) == v1
    from apps.registry.models import VersionSource
    from apps.registry.services import version_from_weights
    from tests.factories import trained_module

    v2 = version_from_weights(
        actor=world.bob,
        model=model,
        weights=trained_module(model.architecture, iris, seed=1).state_dict(),
        spec=model.architecture,
        dataset_version=iris,
        source=VersionSource.TRAIN,
    )
    alias_set(actor=world.bob, model=model, name="production", version=v2)
    assert services.serving_version(deployment) == v2  # the same row, no update of the deployment


def test_a_deleted_alias_or_a_paused_deployment_answers_conflict(world, iris_model):
    model, version = iris_model
    alias = alias_set(actor=world.bob, model=model, name="production", version=version)
    deployment = services.deployment_create(actor=world.bob, model=model, name="iris", alias="production")
    alias.delete()
    with pytest.raises(Conflict, match="follows alias 'production', which is not set"):
        services.serving_version(deployment)
    paused = services.deployment_update(actor=world.bob, deployment=deployment, status="paused")
    with pytest.raises(Conflict, match="is paused; resume it"):
        services.serving_version(paused)


def test_update_switches_between_a_version_and_an_alias(world, iris_model):
    model, version = iris_model
    alias_set(actor=world.bob, model=model, name="staging", version=version)
    deployment = services.deployment_create(actor=world.bob, model=model, name="iris", version=version)
    deployment = services.deployment_update(actor=world.bob, deployment=deployment, version=None, alias="staging")
    assert (deployment.version, deployment.alias) == (None, "staging")
    deployment = services.deployment_update(actor=world.bob, deployment=deployment, version=version)
    assert (deployment.version, deployment.alias) == (version, "")
    with pytest.raises(ApplicationError, match="status: one of active, paused"):
        services.deployment_update(actor=world.bob, deployment=deployment, status="sleeping")
    with pytest.raises(PermissionDenied):
        services.deployment_update(actor=world.vera, deployment=deployment, status="paused")


def test_only_an_admin_or_the_creator_deletes(world, iris_model):
    model, version = iris_model
    deployment = services.deployment_create(actor=world.alice, model=model, name="iris", version=version)
    with pytest.raises(PermissionDenied, match="Only an admin or the member who created"):
        services.deployment_delete(actor=world.bob, deployment=deployment)
    services.deployment_delete(actor=world.adam, deployment=deployment)
    assert not Deployment.objects.exists()


def test_keys_are_hashed_shown_once_and_revocable(world, iris_deployment):
    key, raw = services.key_create(actor=world.bob, deployment=iris_deployment, name="shop")
    assert raw.startswith("lepd_")
    assert len(raw) > 40
    assert key.prefix == raw[:13]
    assert raw not in str(DeploymentKey.objects.filter(pk=key.pk).values().get())
    assert services.key_authenticate(raw) == key
    services.key_revoke(actor=world.bob, key=key)
    with pytest.raises(AuthenticationFailed, match="has been revoked"):
        services.key_authenticate(raw)
    with pytest.raises(AuthenticationFailed, match="Invalid deployment key"):
        services.key_authenticate(raw + "x")
    with pytest.raises(PermissionDenied):
        services.key_create(actor=world.vera, deployment=iris_deployment, name="viewer's")
