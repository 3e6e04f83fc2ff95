"""HTML pages of the registry: models list, model page (versions, lineage, aliases), version page."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.selectors import membership_of
from apps.core.errors import ApplicationError
from apps.core.pages import attempt, attempt_form, found_or_404, redirect_or_page, upload_page
from apps.core.work import attach_states
from apps.datasets.selectors import ready_versions_for, team_datasets, version_for_user
from apps.registry import evaluations, exports, selectors, services
from apps.registry.filters import ModelFilter
from apps.registry.forms import AliasForm, EvaluateForm, ModelCreateForm, VersionUploadForm
from apps.registry.models import ModelVersion

PROCESSING = ModelVersion.Status.PROCESSING


@login_required
def model_list(request):
    membership = current_membership(request)
    models = selectors.team_models(request.user, membership.team if membership else None)
    context = {
        "models": ModelFilter(request.GET, queryset=models).qs,
        "can_create": membership is not None and membership.has_role(Role.MEMBER),
    }
    return render(request, "registry/list.html", context)


@login_required
def model_create(request):
    membership = current_membership(request)
    datasets = team_datasets(request.user, membership.team if membership else None)
    form = ModelCreateForm(request.POST if request.method == "POST" else None, datasets=datasets)
    if request.method != "POST":
        return render(request, "registry/create.html", {"form": form})

    def create(data):
        if membership is None:
            raise ApplicationError("Join or create a team first.")
        return services.model_create(
            actor=request.user,
            team=membership.team,
            name=data["name"],
            task=data["task"],
            architecture=form.architecture(),
            dataset=next((d for d in datasets if d.pk == data["dataset"]), None),
            description=data["description"],
        )

    outcome = attempt_form(
        request, form, create, success=lambda model: f"Model {model.name} created. Train it or upload weights below."
    )
    return redirect_or_page(
        request,
        outcome,
        lambda model: reverse("registry:detail", args=[model.pk]),
        lambda status: render(request, "registry/create.html", {"form": form}, status=status),
    )


def _model_context(request, model):
    versions = attach_states(selectors.model_versions(model))
    upload_form = VersionUploadForm()
    upload_form.set_dataset_versions(ready_versions_for(model.team, model.task))
    for version in versions:
        version.best = selectors.best_evaluation(version)
    return {
        "model": model,
        "versions": versions,
        "aliases": list(selectors.model_aliases(model)),
        "lineage": selectors.lineage_chart(versions) if versions else None,
        "upload_form": upload_form,
        "alias_form": AliasForm(initial={"version": versions[0].number} if versions else {}),
        "can_write": membership_of(request.user, model.team).has_role(Role.MEMBER),
        "processing": any(v.status == PROCESSING for v in versions),
    }


@login_required
def model_detail(request, pk, status=200):
    model = found_or_404(selectors.model_for_user, request.user, pk)
    return render(request, "registry/detail.html", _model_context(request, model), status=status)


@login_required
def model_versions_partial(request, pk):
    """The versions table, polled while an upload is being imported; reloads the page when done."""
    model = found_or_404(selectors.model_for_user, request.user, pk)
    context = _model_context(request, model)
    response = render(request, "registry/_versions.html", context)
    if not context["processing"] and request.GET.get("was") == "processing":
        response["HX-Refresh"] = "true"
    return response


@upload_page(post_only=True)
def version_upload(request, pk):
    model = found_or_404(selectors.model_for_user, request.user, pk)
    form = VersionUploadForm(request.POST, request.FILES)
    form.set_dataset_versions(ready_versions_for(model.team, model.task))

    def upload(data):
        return services.version_upload(
            actor=request.user,
            model=model,
            uploaded_file=data["file"],
            dataset_version=version_for_user(request.user, *form.chosen_dataset_version()),
            label=data["label"],
        )

    outcome = attempt_form(
        request,
        form,
        upload,
        success=lambda version: f"Version {version.number} uploaded; a worker is checking and importing it.",
    )
    return redirect_or_page(
        request,
        outcome,
        reverse("registry:detail", args=[pk]),
        lambda status: model_detail(request, pk, status=status),
        htmx=True,
    )


@login_required
@require_POST
def alias_set(request, pk):
    model = found_or_404(selectors.model_for_user, request.user, pk)

    def set_alias(data):
        version = selectors.version_of(model, data["version"])
        return services.alias_set(actor=request.user, model=model, name=data["name"], version=version)

    outcome = attempt_form(
        request, AliasForm(request.POST), set_alias, success=lambda a: f"{a.name} now points at v{a.version.number}."
    )
    return redirect_or_page(
        request, outcome, reverse("registry:detail", args=[pk]), lambda status: model_detail(request, pk, status)
    )


@login_required
@require_POST
def model_delete(request, pk):
    model = found_or_404(selectors.model_for_user, request.user, pk)
    outcome = attempt(
        request,
        lambda: services.model_delete(actor=request.user, model=model),
        success=f"Model {model.name} deleted.",
    )
    return redirect_or_page(request, outcome, "registry:list", lambda status: model_detail(request, pk, status))


def _version_context(request, version):
    evaluate_form = EvaluateForm()
    evaluate_form.set_dataset_versions(ready_versions_for(version.model.team, version.model.task))
    evaluation_list = list(selectors.version_evaluations(version))
    export_list = list(selectors.version_exports(version))
    attach_states([version, *evaluation_list, *export_list])
    best = max((e for e in evaluation_list if e.status == "ready"), key=lambda e: e.finished_at, default=None)
    return {
        "model": version.model,
        "version": version,
        "children": selectors.version_children(version),
        "evaluations": evaluation_list,
        "exports": export_list,
        "best": best,
        "confusion": selectors.confusion_chart(best, version.class_names) if best else None,
        "evaluate_form": evaluate_form,
        "can_write": membership_of(request.user, version.model.team).has_role(Role.MEMBER),
        "processing": any(w.status == PROCESSING for w in [*evaluation_list, *export_list]),
        "quantized": any(transform.get("kind") == "quantize" for transform in version.transforms),
    }


@login_required
def version_detail(request, pk, number, status=200):
    version = found_or_404(selectors.version_for_user, request.user, pk, number)
    return render(request, "registry/version.html", _version_context(request, version), status=status)


@login_required
def version_work_partial(request, pk, number):
    """Evaluations and exports, polled while any is running; reloads the page when they finish."""
    version = found_or_404(selectors.version_for_user, request.user, pk, number)
    context = _version_context(request, version)
    response = render(request, "registry/_work.html", context)
    if not context["processing"] and request.GET.get("was") == "processing":
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def version_evaluate(request, pk, number):
    version = found_or_404(selectors.version_for_user, request.user, pk, number)
    form = EvaluateForm(request.POST)
    form.set_dataset_versions(ready_versions_for(version.model.team, version.model.task))

    def evaluate(data):
        dataset_version = version_for_user(request.user, *form.chosen_dataset_version())
        return evaluations.evaluation_request(actor=request.user, version=version, dataset_version=dataset_version)

    outcome = attempt_form(
        request, form, evaluate, success=lambda e: f"Evaluating v{version.number} on {e.dataset_version}."
    )
    return _back_to_version(request, outcome, pk, number)


@login_required
@require_POST
def version_export(request, pk, number):
    version = found_or_404(selectors.version_for_user, request.user, pk, number)
    outcome = attempt(
        request,
        lambda: exports.export_request(actor=request.user, version=version),
        success=f"Exporting v{version.number} to ONNX.",
    )
    return _back_to_version(request, outcome, pk, number)


def _back_to_version(request, outcome, pk, number):
    return redirect_or_page(
        request,
        outcome,
        reverse("registry:version", args=[pk, number]),
        lambda status: version_detail(request, pk, number, status=status),
    )
