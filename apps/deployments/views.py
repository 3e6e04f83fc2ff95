"""HTML pages of deployments: the list (with a create form), and the deployment page with its
request chart, a "try it" form, its keys and its target."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.selectors import membership_of
from apps.core.errors import ApplicationError
from apps.core.pages import attempt, attempt_form, found_or_404, redirect_or_page
from apps.deployments import selectors, services, stats
from apps.deployments.filters import DeploymentFilter
from apps.deployments.forms import DeploymentCreateForm, DeploymentTargetForm, KeyCreateForm, parse_feature_rows
from apps.deployments.serving import InputError, image_array, inputs_array
from apps.registry.models import Model

CHART_MINUTES = 60


def _chosen_target(form, team, model: Model | None = None) -> tuple[Model, dict]:
    """The form's chosen target: its model, and the service arguments (a version, or an alias name)."""
    kind, model_pk, value = form.chosen_target()
    versions, aliases = selectors.deployment_targets(team, model)
    if kind == "alias":
        alias = next((a for a in aliases if a.model_id == model_pk and a.name == value), None)
        if alias is None:
            raise ApplicationError("That alias is not set any more.")
        return alias.model, {"version": None, "alias": alias.name}
    version = next((v for v in versions if v.model_id == model_pk and str(v.number) == value), None)
    if version is None:
        raise ApplicationError("That version is not available any more.")
    return version.model, {"version": version, "alias": ""}


@login_required
def deployment_list(request, status=200, form=None):
    membership = current_membership(request)
    deployments = selectors.team_deployments(request.user, membership.team if membership else None)
    page = selectors.attach_recent_totals(list(DeploymentFilter(request.GET, queryset=deployments).qs[:200]))
    can_create = membership is not None and membership.has_role(Role.MEMBER)
    if form is None and can_create:
        form = DeploymentCreateForm(initial={"target": request.GET.get("target", "")})  # "Deploy" on a version
        form.set_targets(*selectors.deployment_targets(membership.team))
    context = {"deployments": page, "can_create": can_create, "form": form}
    return render(request, "deployments/list.html", context, status=status)


@login_required
@require_POST
def deployment_create(request):
    membership = current_membership(request)
    if membership is None:
        messages.error(request, "Join or create a team first.")
        return deployment_list(request, status=400)
    form = DeploymentCreateForm(request.POST)
    form.set_targets(*selectors.deployment_targets(membership.team))

    def create(data):
        model, target = _chosen_target(form, membership.team)
        return services.deployment_create(actor=request.user, model=model, name=data["name"], **target)

    outcome = attempt_form(
        request,
        form,
        create,
        success=lambda deployment: f"Deployment {deployment.name} is serving {deployment.target}.",
    )
    return redirect_or_page(
        request,
        outcome,
        lambda deployment: reverse("deployments:detail", args=[deployment.pk]),
        lambda status: deployment_list(request, status=status, form=form),
    )


def _stats_context(deployment) -> dict:
    series, _ = stats.window(deployment.pk, minutes=CHART_MINUTES)
    return {
        "deployment": deployment,
        "recent": selectors.recent_totals([deployment])[deployment.pk],
        "chart": stats.latency_chart(series, minutes=CHART_MINUTES) if series else None,
    }


def _detail_context(request, deployment, **extra):
    membership = membership_of(request.user, deployment.team)
    serving = selectors.serving_version_or_none(deployment)
    target_form = DeploymentTargetForm()
    target_form.set_targets(*selectors.deployment_targets(deployment.team, deployment.model))
    return {
        **_stats_context(deployment),
        "keys": list(selectors.deployment_keys(deployment)),
        "key_form": KeyCreateForm(),
        "target_form": target_form,
        "serving_version": serving,
        "ks": range(1, 1 + (serving.num_classes if serving else 5)),
        "predict_url": request.build_absolute_uri(reverse("api:deployment-predict", args=[deployment.pk])),
        "can_write": membership.has_role(Role.MEMBER),
        "can_delete": membership.has_role(Role.ADMIN) or deployment.created_by_id == request.user.pk,
        **extra,
    }


@login_required
def deployment_detail(request, pk, status=200, **extra):
    deployment = found_or_404(selectors.deployment_for_user, request.user, pk)
    return render(request, "deployments/detail.html", _detail_context(request, deployment, **extra), status=status)


@login_required
def deployment_stats(request, pk):
    """The request chart and figures, polled by the page."""
    deployment = found_or_404(selectors.deployment_for_user, request.user, pk)
    return render(request, "deployments/_stats.html", _stats_context(deployment))


def _try_reader(request):
    """read_inputs for the "try it" form: an uploaded image, a drawn canvas (pixels), or feature lines."""

    def read(version):
        k = request.POST.get("k") or ""
        if k and not k.isdigit():
            raise InputError("k", "must be an integer")
        k = int(k) if k else None
        image = request.FILES.get("image")
        if image is not None:
            return image_array(image.read(), version.input_shape)[None], k
        if request.POST.get("pixels"):
            try:
                pixels = json.loads(request.POST["pixels"])
            except json.JSONDecodeError:
                raise InputError("pixels", "the drawing did not arrive as JSON") from None
            return inputs_array([pixels], version.input_shape, max_batch=1), k
        rows = parse_feature_rows(request.POST.get("features", ""))
        return inputs_array(rows, version.input_shape, max_batch=services.max_batch()), k

    return read


@login_required
@require_POST
def deployment_try(request, pk):
    """Predict from the page (the same service as the API); answers the result partial."""
    deployment = found_or_404(selectors.deployment_for_user, request.user, pk)
    try:
        result = services.deployment_predict(deployment=deployment, read_inputs=_try_reader(request))
    except ApplicationError as error:
        return render(request, "deployments/_prediction.html", {"error": error.message}, status=error.status_code)
    return render(request, "deployments/_prediction.html", {"result": result, "deployment": deployment})


def _detail_again(request, pk):
    """The deployment page under a failed action's status, its error already flashed."""
    return lambda status: deployment_detail(request, pk, status=status)


@login_required
@require_POST
def deployment_status(request, pk):
    deployment = found_or_404(selectors.deployment_for_user, request.user, pk)
    wanted = request.POST.get("status", "")
    outcome = attempt(
        request,
        lambda: services.deployment_update(actor=request.user, deployment=deployment, status=wanted),
        success=f"Deployment {deployment.name} is {wanted}.",
    )
    return redirect_or_page(request, outcome, reverse("deployments:detail", args=[pk]), _detail_again(request, pk))


@login_required
@require_POST
def deployment_target(request, pk):
    deployment = found_or_404(selectors.deployment_for_user, request.user, pk)
    form = DeploymentTargetForm(request.POST)
    form.set_targets(*selectors.deployment_targets(deployment.team, deployment.model))

    def change(data):
        _, target = _chosen_target(form, deployment.team, deployment.model)
        return services.deployment_update(actor=request.user, deployment=deployment, **target)

    outcome = attempt_form(
        request, form, change, success=lambda updated: f"Deployment {updated.name} now serves {updated.target}."
    )
    return redirect_or_page(request, outcome, reverse("deployments:detail", args=[pk]), _detail_again(request, pk))


@login_required
@require_POST
def deployment_delete(request, pk):
    deployment = found_or_404(selectors.deployment_for_user, request.user, pk)
    outcome = attempt(
        request,
        lambda: services.deployment_delete(actor=request.user, deployment=deployment),
        success=f"Deployment {deployment.name} deleted.",
    )
    return redirect_or_page(request, outcome, "deployments:list", _detail_again(request, pk))


@login_required
@require_POST
def key_create(request, pk):
    deployment = found_or_404(selectors.deployment_for_user, request.user, pk)
    outcome = attempt_form(
        request,
        KeyCreateForm(request.POST),
        lambda data: services.key_create(actor=request.user, deployment=deployment, name=data["name"]),
        success=lambda issued: f"Key {issued[0].name} issued. Copy it now: it is not shown again.",
    )
    # The secret is rendered once in this response, never stored or redirected with.
    new_key = outcome.value[1] if outcome.ok else None
    return deployment_detail(request, pk, status=outcome.status, new_key=new_key)


@login_required
@require_POST
def key_revoke(request, pk, key_pk):
    key = found_or_404(selectors.key_for_user, request.user, pk, key_pk)
    outcome = attempt(
        request,
        lambda: services.key_revoke(actor=request.user, key=key),
        success=f"Key {key.name} revoked.",
    )
    return redirect_or_page(request, outcome, reverse("deployments:detail", args=[pk]), _detail_again(request, pk))
