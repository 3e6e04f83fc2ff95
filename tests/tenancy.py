"""The tenancy harness: every object route of every app is registered here.

Each `TenantRoute` builds the URL of an object that belongs to Globex (Charlie's
team). `tests/test_tenancy.py` then asserts, for every route and method, that
- Alice (Acme's owner) gets 404, exactly as for an object that does not exist;
- nobody logged in gets 401 (API) or the login redirect (pages);
- Charlie himself gets a normal answer on GET, so a route cannot pass by 404ing everyone.
`test_every_object_route_is_registered` fails when an app adds a URL with a
parameter and does not plug it in here (or exempt it with a reason).

A new app adds its routes to `TENANT_ROUTES` (and nothing else).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse

from apps.accounts.models import ApiToken
from apps.accounts.tokens import token_create
from tests.factories import dataset_with_version, experiment_row, model_with_version
from tests.personas import World


@dataclass(frozen=True)
class TenantRoute:
    name: str  # the URL name, namespaced ("api:team-detail")
    url: Callable[[World], str]  # the URL of one of Globex's objects
    methods: tuple[str, ...] = ("GET",)

    @property
    def is_api(self) -> bool:
        return self.name.startswith("api:")


def _charlie_token(world: World) -> ApiToken:
    token, _ = token_create(user=world.charlie, name="charlie's script")
    return token


TENANT_ROUTES: list[TenantRoute] = [
    # accounts: API
    TenantRoute("api:team-detail", lambda w: reverse("api:team-detail", args=[w.globex.slug]), ("GET", "PATCH")),
    TenantRoute("api:team-usage", lambda w: reverse("api:team-usage", args=[w.globex.slug])),
    TenantRoute("api:member-list", lambda w: reverse("api:member-list", args=[w.globex.slug]), ("GET", "POST")),
    TenantRoute(
        "api:member-detail",
        lambda w: reverse("api:member-detail", args=[w.globex.slug, w.charlie.username]),
        ("GET", "PATCH", "DELETE"),
    ),
    TenantRoute(
        "api:token-detail", lambda w: reverse("api:token-detail", args=[_charlie_token(w).pk]), ("GET", "DELETE")
    ),
    # accounts: pages
    TenantRoute("accounts:team", lambda w: reverse("accounts:team", args=[w.globex.slug])),
    TenantRoute("accounts:team_rename", lambda w: reverse("accounts:team_rename", args=[w.globex.slug]), ("POST",)),
    TenantRoute("accounts:member_add", lambda w: reverse("accounts:member_add", args=[w.globex.slug]), ("POST",)),
    TenantRoute(
        "accounts:member_role",
        lambda w: reverse("accounts:member_role", args=[w.globex.slug, w.charlie.username]),
        ("POST",),
    ),
    TenantRoute(
        "accounts:member_remove",
        lambda w: reverse("accounts:member_remove", args=[w.globex.slug, w.charlie.username]),
        ("POST",),
    ),
    TenantRoute(
        "accounts:token_revoke", lambda w: reverse("accounts:token_revoke", args=[_charlie_token(w).pk]), ("POST",)
    ),
]


def _charlie_invitation(world: World):
    """An invitation for Charlie to another team (only Charlie may answer it)."""
    if not hasattr(world, "_charlie_invitation"):
        from apps.accounts.models import Membership, Team

        initech = Team.objects.create(slug="initech", name="Initech")
        world._charlie_invitation = Membership.objects.create(team=initech, user=world.charlie, accepted_at=None)
    return world._charlie_invitation


TENANT_ROUTES += [
    TenantRoute(
        "api:invitation-accept", lambda w: reverse("api:invitation-accept", args=[_charlie_invitation(w).pk]), ("POST",)
    ),
    TenantRoute(
        "api:invitation-decline",
        lambda w: reverse("api:invitation-decline", args=[_charlie_invitation(w).pk]),
        ("POST",),
    ),
    TenantRoute(
        "accounts:invitation_answer",
        lambda w: reverse("accounts:invitation_answer", args=[_charlie_invitation(w).pk, "accept"]),
        ("POST",),
    ),
]


def _globex_digits(world: World):
    """Globex's image dataset with a ready version (made once per test)."""
    if not hasattr(world, "_globex_digits"):
        world._globex_digits = dataset_with_version(world.globex, bundled="digits", creator=world.charlie)
    return world._globex_digits


def _dataset_url(name: str, *extra):
    return lambda w: reverse(name, args=[_globex_digits(w)[0].pk, *extra])


TENANT_ROUTES += [
    # datasets: API
    TenantRoute("api:dataset-detail", _dataset_url("api:dataset-detail"), ("GET", "DELETE")),
    TenantRoute("api:dataset-version-list", _dataset_url("api:dataset-version-list"), ("GET", "POST")),
    TenantRoute("api:dataset-version-detail", _dataset_url("api:dataset-version-detail", 1)),
    TenantRoute("api:dataset-version-preview", _dataset_url("api:dataset-version-preview", 1)),
    TenantRoute("api:dataset-version-download", _dataset_url("api:dataset-version-download", 1)),
    TenantRoute("api:dataset-version-preview-image", _dataset_url("api:dataset-version-preview-image", 1)),
    # datasets: pages
    TenantRoute("datasets:detail", _dataset_url("datasets:detail")),
    TenantRoute("datasets:delete", _dataset_url("datasets:delete"), ("POST",)),
    TenantRoute("datasets:version_create", _dataset_url("datasets:version_create"), ("POST",)),
    TenantRoute("datasets:version_status", _dataset_url("datasets:version_status", 1)),
]


def _globex_model(world: World):
    """Globex's model with a ready version (evaluated, exported, aliased) of its digits dataset."""
    if not hasattr(world, "_globex_model"):
        import torch

        from apps.registry.evaluations import evaluate_now
        from apps.registry.exports import export_request, export_run
        from apps.registry.services import alias_set

        digits = _globex_digits(world)[1]
        model, version, _ = model_with_version(
            world.globex, digits, spec={"family": "cnn_small"}, name="globex-cnn", creator=world.charlie, steps=1
        )
        evaluation = evaluate_now(
            actor=world.charlie, version=version, dataset_version=digits, job_id=None, device=torch.device("cpu")
        )
        export_run(export_request(actor=world.charlie, version=version))
        alias_set(actor=world.charlie, model=model, name="production", version=version)
        world._globex_model = model, version, evaluation
    return world._globex_model


def _model_url(name: str, *extra):
    return lambda w: reverse(name, args=[_globex_model(w)[0].pk, *extra])


TENANT_ROUTES += [
    # registry: API
    TenantRoute("api:model-detail", _model_url("api:model-detail"), ("GET", "DELETE")),
    TenantRoute("api:model-version-list", _model_url("api:model-version-list"), ("GET", "POST")),
    TenantRoute("api:model-version-detail", _model_url("api:model-version-detail", 1)),
    TenantRoute("api:model-version-download", _model_url("api:model-version-download", 1)),
    TenantRoute(
        "api:model-version-evaluation-list", _model_url("api:model-version-evaluation-list", 1), ("GET", "POST")
    ),
    TenantRoute(
        "api:model-version-evaluation-detail",
        lambda w: reverse(
            "api:model-version-evaluation-detail", args=[_globex_model(w)[0].pk, 1, _globex_model(w)[2].pk]
        ),
    ),
    TenantRoute("api:model-version-export-list", _model_url("api:model-version-export-list", 1), ("GET", "POST")),
    TenantRoute("api:model-version-export-detail", _model_url("api:model-version-export-detail", 1, "onnx")),
    TenantRoute("api:model-version-export-download", _model_url("api:model-version-export-download", 1, "onnx")),
    TenantRoute("api:model-alias-list", _model_url("api:model-alias-list"), ("GET", "POST")),
    TenantRoute(
        "api:model-alias-detail", _model_url("api:model-alias-detail", "production"), ("GET", "PATCH", "DELETE")
    ),
    # registry: pages
    TenantRoute("registry:detail", _model_url("registry:detail")),
    TenantRoute("registry:versions_partial", _model_url("registry:versions_partial")),
    TenantRoute("registry:upload", _model_url("registry:upload"), ("POST",)),
    TenantRoute("registry:alias_set", _model_url("registry:alias_set"), ("POST",)),
    TenantRoute("jobs:train", _model_url("jobs:train"), ("GET", "POST")),
    TenantRoute("registry:delete", _model_url("registry:delete"), ("POST",)),
    TenantRoute("registry:version", _model_url("registry:version", 1)),
    TenantRoute("registry:version_work", _model_url("registry:version_work", 1)),
    TenantRoute("registry:version_evaluate", _model_url("registry:version_evaluate", 1), ("POST",)),
    TenantRoute("registry:version_export", _model_url("registry:version_export", 1), ("POST",)),
]


def _globex_job(world: World, kind: str = "train"):
    """A finished job of Globex of `kind` (one per kind: every kind of work is a job the harness covers)."""
    jobs = world.__dict__.setdefault("_globex_jobs", {})
    if kind not in jobs:
        from apps.jobs.models import Job

        jobs[kind] = Job.objects.create(
            team=world.globex, submitted_by=world.charlie, kind=kind, spec={}, status="succeeded", attempts=1
        )
    return jobs[kind]


def _job_url(name: str, kind: str = "train"):
    return lambda w: reverse(name, args=[_globex_job(w, kind).pk])


TENANT_ROUTES += [
    TenantRoute("api:job-detail", _job_url("api:job-detail")),
    TenantRoute("api:job-cancel", _job_url("api:job-cancel"), ("POST",)),
    TenantRoute("api:job-retry", _job_url("api:job-retry"), ("POST",)),
    TenantRoute("api:job-metrics", _job_url("api:job-metrics")),
    TenantRoute("api:job-logs", _job_url("api:job-logs")),
    TenantRoute("jobs:detail", _job_url("jobs:detail")),
    TenantRoute("jobs:live", _job_url("jobs:live")),
    TenantRoute("jobs:cancel", _job_url("jobs:cancel"), ("POST",)),
    TenantRoute("jobs:retry", _job_url("jobs:retry"), ("POST",)),
]


def _job_kind_routes(kind: str) -> list[TenantRoute]:
    return [
        TenantRoute("api:job-detail", _job_url("api:job-detail", kind)),
        TenantRoute("jobs:detail", _job_url("jobs:detail", kind)),
    ]


# Every job kind's jobs answer 404 to other teams (tests/jobs/test_kinds.py checks each kind has its routes).
JOB_KIND_ROUTES = {
    kind: _job_kind_routes(kind) for kind in ("ingest", "import", "train", "evaluate", "compress", "export")
}
TENANT_ROUTES += [route for routes in JOB_KIND_ROUTES.values() for route in routes]


def _globex_experiment(world: World):
    """A finished experiment of Globex on its model, with its baseline trial."""
    if not hasattr(world, "_globex_experiment"):
        from apps.experiments.models import Trial

        model, version, evaluation = _globex_model(world)
        digits = _globex_digits(world)[1]
        experiment = experiment_row(
            world.globex,
            version,
            digits,
            name="globex sweep",
            max_accuracy_drop=1.0,
            budget=4,
            status="succeeded",
            created_by=world.charlie,
        )
        experiment.recommended = Trial.objects.create(
            experiment=experiment,
            number=0,
            recipe_key="0" * 64,
            family="baseline",
            status="succeeded",
            version=version,
            evaluation=evaluation,
            accuracy=evaluation.accuracy,
            artifact_bytes=evaluation.artifact_bytes,
            parameter_count=1,
            nonzero_parameters=1,
            flops_per_sample=1,
            latency_ms=0.1,
        )
        experiment.save()
        world._globex_experiment = experiment
    return world._globex_experiment


def _experiment_url(name: str, *extra):
    return lambda w: reverse(name, args=[_globex_experiment(w).pk, *extra])


TENANT_ROUTES += [
    TenantRoute("api:experiment-detail", _experiment_url("api:experiment-detail"), ("GET", "DELETE")),
    TenantRoute("api:experiment-cancel", _experiment_url("api:experiment-cancel"), ("POST",)),
    TenantRoute("api:experiment-frontier", _experiment_url("api:experiment-frontier")),
    TenantRoute("api:experiment-recommended", _experiment_url("api:experiment-recommended")),
    TenantRoute("api:experiment-promote", _experiment_url("api:experiment-promote"), ("POST",)),
    TenantRoute("api:experiment-trials-csv", _experiment_url("api:experiment-trials-csv")),
    TenantRoute("api:experiment-trial-list", _experiment_url("api:experiment-trial-list")),
    TenantRoute("api:experiment-trial-detail", _experiment_url("api:experiment-trial-detail", 0)),
    TenantRoute("experiments:detail", _experiment_url("experiments:detail")),
    TenantRoute("experiments:live", _experiment_url("experiments:live")),
    TenantRoute("experiments:csv", _experiment_url("experiments:csv")),
    TenantRoute("experiments:cancel", _experiment_url("experiments:cancel"), ("POST",)),
    TenantRoute("experiments:promote", _experiment_url("experiments:promote"), ("POST",)),
]

# URL names with parameters that do not address a team's object, and why.
EXEMPT_ROUTES = {
    "admin:*": "the Django admin is for operators (staff), not tenants",
    "api:node-detail": "nodes are shared infrastructure every signed-in user sees (tests/nodes)",
    "api:node-drain": "nodes are shared infrastructure; only staff drain them (tests/nodes)",
    "api:node-undrain": "nodes are shared infrastructure; only staff drain them (tests/nodes)",
    "nodes:drain": "nodes are shared infrastructure; only staff drain them (tests/nodes)",
}


def _globex_deployment(world: World):
    """Globex's deployment of its model's version 1, with one key."""
    if not hasattr(world, "_globex_deployment"):
        from apps.deployments.models import Deployment
        from apps.deployments.services import key_create

        model, version, _ = _globex_model(world)
        deployment = Deployment.objects.create(
            team=world.globex, name="globex-digits", model=model, version=version, created_by=world.charlie
        )
        key, _ = key_create(actor=world.charlie, deployment=deployment, name="globex shop")
        world._globex_deployment = deployment, key
    return world._globex_deployment


def _deployment_url(name: str, *, key: bool = False):
    def url(world):
        deployment, deployment_key = _globex_deployment(world)
        return reverse(name, args=[deployment.pk, deployment_key.pk] if key else [deployment.pk])

    return url


TENANT_ROUTES += [
    # deployments: API
    TenantRoute("api:deployment-detail", _deployment_url("api:deployment-detail"), ("GET", "PATCH", "DELETE")),
    TenantRoute("api:deployment-stats", _deployment_url("api:deployment-stats")),
    TenantRoute("api:deployment-predict", _deployment_url("api:deployment-predict"), ("POST",)),
    TenantRoute("api:deployment-key-list", _deployment_url("api:deployment-key-list"), ("GET", "POST")),
    TenantRoute("api:deployment-key-detail", _deployment_url("api:deployment-key-detail", key=True), ("GET", "DELETE")),
    # deployments: pages
    TenantRoute("deployments:detail", _deployment_url("deployments:detail")),
    TenantRoute("deployments:stats", _deployment_url("deployments:stats")),
    TenantRoute("deployments:try", _deployment_url("deployments:try"), ("POST",)),
    TenantRoute("deployments:status", _deployment_url("deployments:status"), ("POST",)),
    TenantRoute("deployments:target", _deployment_url("deployments:target"), ("POST",)),
    TenantRoute("deployments:delete", _deployment_url("deployments:delete"), ("POST",)),
    TenantRoute("deployments:key_create", _deployment_url("deployments:key_create"), ("POST",)),
    TenantRoute("deployments:key_revoke", _deployment_url("deployments:key_revoke", key=True), ("POST",)),
]
