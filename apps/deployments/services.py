"""Every write to deployments and keys, and serving a predict request.

Roles: members and above create, change and pause deployments and issue or revoke their
keys; deleting a deployment takes an admin or its creator; viewers read and may call
predict (it changes nothing but the request counters). A deployment key authorizes
predict on its own deployment only.
"""

import secrets
import time
from collections.abc import Callable
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.services import require_role
from apps.accounts.tokens import hash_token
from apps.core.errors import AuthenticationFailed, Conflict, PermissionDenied
from apps.core.params import invalid
from apps.deployments import stats
from apps.deployments.cache import MODELS
from apps.deployments.models import Deployment, DeploymentKey
from apps.deployments.serving import InputError, probabilities, top_k
from apps.registry.loading import version_module
from apps.registry.models import Alias, Model, ModelVersion
from apps.registry.services import ALIAS_NAME

KEY_PREFIX = "lepd_"
DISPLAY_PREFIX_LENGTH = 13
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise invalid("name", "a deployment needs a name.")
    if len(name) > 100:
        raise invalid("name", "at most 100 characters.")
    return name


def _checked_target(model: Model, version: ModelVersion | None, alias: str) -> tuple[ModelVersion | None, str]:
    """(version, "") or (None, alias): exactly one, a ready version of this model or an alias it has."""
    alias = (alias or "").strip().lower()
    if (version is None) == (not alias):
        raise invalid("version", "name either a version to serve or an alias to follow, not both.")
    if version is not None:
        if version.model_id != model.pk:
            raise invalid("version", f"not a version of model {model.name}.")
        if version.status != ModelVersion.Status.READY:
            raise invalid("version", f"v{version.number} is {version.status}; only ready versions can be served.")
        return version, ""
    if not ALIAS_NAME.fullmatch(alias):
        raise invalid("alias", "an alias is 1-50 letters, digits, '-' or '_'.")
    if not Alias.objects.filter(model=model, name=alias).exists():
        raise invalid("alias", f"model {model.name} has no alias '{alias}'; set it first.")
    return None, alias


def _name_taken(team, name: str) -> Conflict:
    return Conflict(f"Team {team.slug} already has a deployment named '{name}'.", fields={"name": ["Already taken."]})


@transaction.atomic
def deployment_create(
    *, actor, model: Model, name: str, version: ModelVersion | None = None, alias: str = ""
) -> Deployment:
    """Serve a version of `model`, or follow one of its aliases. The deployment belongs to the model's team."""
    require_role(actor, model.team, Role.MEMBER)
    name = _clean_name(name)
    version, alias = _checked_target(model, version, alias)
    if Deployment.objects.filter(team=model.team, name=name).exists():
        raise _name_taken(model.team, name)
    try:
        with transaction.atomic():
            return Deployment.objects.create(
                team=model.team, name=name, model=model, version=version, alias=alias, created_by=actor
            )
    except IntegrityError:  # a concurrent request took the name between the check and the insert
        raise _name_taken(model.team, name) from None


UNCHANGED = object()


@transaction.atomic
def deployment_update(
    *, actor, deployment: Deployment, name=UNCHANGED, status=UNCHANGED, version=UNCHANGED, alias=UNCHANGED
) -> Deployment:
    """Rename, pause or resume, or point at another version or alias (switches on the next request)."""
    require_role(actor, deployment.team, Role.MEMBER)
    deployment = Deployment.objects.select_for_update().select_related("team", "model").get(pk=deployment.pk)
    if name is not UNCHANGED:
        name = _clean_name(name)
        if Deployment.objects.filter(team=deployment.team, name=name).exclude(pk=deployment.pk).exists():
            raise _name_taken(deployment.team, name)
        deployment.name = name
    if status is not UNCHANGED:
        if status not in Deployment.Status.values:
            raise invalid("status", f"one of {', '.join(Deployment.Status.values)}.")
        deployment.status = status
    if version is not UNCHANGED or alias is not UNCHANGED:
        deployment.version, deployment.alias = _checked_target(
            deployment.model,
            None if version is UNCHANGED else version,
            "" if alias is UNCHANGED or alias is None else alias,
        )
    deployment.updated_at = timezone.now()
    deployment.save()
    return deployment


def deployment_delete(*, actor, deployment: Deployment) -> None:
    """Delete a deployment with its keys and request statistics (an admin or its creator)."""
    membership = require_role(actor, deployment.team, Role.MEMBER)
    if not membership.has_role(Role.ADMIN) and deployment.created_by_id != actor.pk:
        raise PermissionDenied("Only an admin or the member who created this deployment can delete it.")
    deployment.delete()


@transaction.atomic
def key_create(*, actor, deployment: Deployment, name: str) -> tuple[DeploymentKey, str]:
    """A new predict-only key. Returns the row and the secret, which is never stored."""
    require_role(actor, deployment.team, Role.MEMBER)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise invalid("name", "a key needs a name of 1-100 characters.")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = DeploymentKey.objects.create(
        deployment=deployment,
        name=name,
        prefix=raw[:DISPLAY_PREFIX_LENGTH],
        key_hash=hash_token(raw),
        created_by=actor,
    )
    return key, raw


def key_revoke(*, actor, key: DeploymentKey) -> DeploymentKey:
    """Revoke a key; requests with it fail from the next one on (revoking twice keeps the first time)."""
    require_role(actor, key.deployment.team, Role.MEMBER)
    DeploymentKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db(fields=["revoked_at"])
    return key


def key_authenticate(raw: str) -> DeploymentKey:
    """The active key behind a secret, or `AuthenticationFailed` saying why not."""
    key = DeploymentKey.objects.select_related("deployment__version").filter(key_hash=hash_token(raw)).first()
    if key is None:
        raise AuthenticationFailed("Invalid deployment key.")
    if key.revoked_at is not None:
        raise AuthenticationFailed("This deployment key has been revoked.")
    now = timezone.now()
    # One conditional write a minute at most, not one per request.
    DeploymentKey.objects.filter(pk=key.pk).exclude(last_used_at__gt=now - LAST_USED_RESOLUTION).update(
        last_used_at=now
    )
    return key


def serving_version(deployment: Deployment) -> ModelVersion:
    """The version a request to `deployment` is answered by, resolved now (aliases move)."""
    if deployment.status != Deployment.Status.ACTIVE:
        raise Conflict(f"Deployment {deployment.name} is {deployment.status}; resume it to serve requests.")
    if not deployment.alias:
        return deployment.version
    alias = Alias.objects.select_related("version").filter(model_id=deployment.model_id, name=deployment.alias).first()
    if alias is None:
        raise Conflict(f"Deployment {deployment.name} follows alias '{deployment.alias}', which is not set.")
    return alias.version


def _module(version: ModelVersion):
    return MODELS.get((version.pk, version.sha256), lambda: version_module(version))


def _checked_k(k, num_classes: int) -> int:
    if k is None:
        return min(5, num_classes)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= num_classes:
        raise invalid("k", f"must be an integer from 1 to {num_classes} (the model's classes); got {k!r}.")
    return k


def deployment_predict(
    *, deployment: Deployment, read_inputs: Callable[[ModelVersion], tuple[np.ndarray, int | None]]
) -> dict:
    """Top-k predictions of the serving version for the request that `read_inputs(version)` reads.

    `read_inputs` returns the batch, checked against the version's input shape, and k (None:
    the default). Every request is counted with its latency, failed ones as errors.
    """
    started = time.perf_counter()
    failed = True
    try:
        version = serving_version(deployment)
        try:
            inputs, k = read_inputs(version)
        except InputError as error:
            raise invalid(error.field, error.message) from None
        k = _checked_k(k, version.num_classes)
        probs = probabilities(_module(version), inputs, version.preprocessing)
        failed = False
        return {
            "deployment": deployment.pk,
            "model": deployment.model_id,
            "version": version.number,
            "alias": deployment.alias or None,
            "predictions": top_k(probs, k, version.class_names),
        }
    finally:
        stats.record(deployment.pk, (time.perf_counter() - started) * 1000, error=failed)


def max_batch() -> int:
    return settings.LEPTON_PREDICT_MAX_BATCH
