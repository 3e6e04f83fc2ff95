"""HTML pages of the registry: models list, model page (versions, lineage, aliases), version page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.selectors import membership_of
from apps.core.errors import ApplicationError, NotFound
from apps.core.middleware import accepts_uploads
from apps.core.pages import form_errors_text, run_action, run_form_action
from apps.core.uploads import limit_uploads
from apps.core.work import attach_states
from apps.datasets.selectors import datasets_for_user, ready_versions_for, version_for_user
from apps.registry import evaluations, exports, selectors, services
from apps.registry.filters import ModelFilter
from apps.registry.forms import AliasForm, EvaluateForm, ModelCreateForm, VersionUploadForm
from apps.registry.models import ModelVersion

PROCESSING = ModelVersion.Status.PROCESSING


def _or_404(lookup):
    try:
        return lookup()
    except NotFound:
        raise Http404("Not found.") from None


def _ready_dataset_versions(user, model):
    """Ready versions of the datasets of the model's team and task (for the selects)."""
    return ready_versions_for(model.team, model.task)


@login_required
def model_list(request):
    membership = current_membership(request)
    models = selectors.models_for_user(request.user).none()
    if membership is not None:
        models = selectors.models_for_user(request.user).filter(team=membership.team)
    filters = ModelFilter(request.GET, queryset=models)
    context = {
        "models": filters.qs,
        "can_create": membership is not None and membership.has_role(Role.MEMBER),
    }
    return render(request, "registry/list.html", context)


@login_required
def model_create(request):
    membership = current_membership(request)
    datasets = datasets_for_user(request.user).filter(team=membership.team) if membership else []
    form = ModelCreateForm(request.POST if request.method == "POST" else None, datasets=datasets)
    status = 200
    if request.method == "POST":
        created = {}

        def create(data):
            dataset = next((d for d in datasets if d.pk == data["dataset"]), None)
            created["model"] = services.model_create(
                actor=request.user,
                team=membership.team,
                name=data["name"],
                task=data["task"],
                architecture=form.architecture(),
                dataset=dataset,
                description=data["description"],
            )
            return f"Model {created['model'].name} created. Train it or upload weights below."

        if membership is None:
            messages.error(request, "Join or create a team first.")
            status = 400
        else:
            status = run_form_action(request, form, create)
        if "model" in created:
            return redirect("registry:detail", pk=created["model"].pk)
    return render(request, "registry/create.html", {"form": form}, status=status)


def _model_context(request, model):
    versions = attach_states(selectors.model_versions(model))
    dataset_versions = list(_ready_dataset_versions(request.user, model))
    upload_form = VersionUploadForm()
    upload_form.set_dataset_versions(dataset_versions)
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
    model = _or_404(lambda: selectors.model_for_user(request.user, pk))
    return render(request, "registry/detail.html", _model_context(request, model), status=status)


@login_required
def model_versions_partial(request, pk):
    """The versions table, polled while an upload is being imported; reloads the page when done."""
    model = _or_404(lambda: selectors.model_for_user(request.user, pk))
    context = _model_context(request, model)
    response = render(request, "registry/_versions.html", context)
    if not context["processing"] and request.GET.get("was") == "processing":
        response["HX-Refresh"] = "true"
    return response


@accepts_uploads
@csrf_exempt  # checked below, once the upload size limit is in place
@login_required
@require_POST
def version_upload(request, pk):
    return _version_upload_post(request, pk, limit_uploads(request))


@csrf_protect
def _version_upload_post(request, pk, handler):
    model = _or_404(lambda: selectors.model_for_user(request.user, pk))
    form = VersionUploadForm(request.POST, request.FILES)
    form.set_dataset_versions(_ready_dataset_versions(request.user, model))
    if handler.exceeded:
        messages.error(request, handler.refusal().message)
        return model_detail(request, pk, status=413)
    if not form.is_valid():
        messages.error(request, form_errors_text(form))
        return model_detail(request, pk, status=400)
    dataset_pk, number = form.chosen_dataset_version()
    try:
        version = services.version_upload(
            actor=request.user,
            model=model,
            uploaded_file=form.cleaned_data["file"],
            dataset_version=version_for_user(request.user, dataset_pk, number),
            label=form.cleaned_data["label"],
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return model_detail(request, pk, status=error.status_code)
    messages.success(request, f"Version {version.number} uploaded; a worker is checking and importing it.")
    url = reverse("registry:detail", args=[pk])
    return HttpResponse(status=204, headers={"HX-Redirect": url}) if request.htmx else redirect(url)


@login_required
@require_POST
def alias_set(request, pk):
    model = _or_404(lambda: selectors.model_for_user(request.user, pk))

    def set_alias(data):
        version = model.versions.filter(number=data["version"]).first()
        if version is None:
            raise ApplicationError(f"Model {model.name} has no version {data['version']}.")
        services.alias_set(actor=request.user, model=model, name=data["name"], version=version)
        return f"{data['name']} now points at v{version.number}."

    status = run_form_action(request, AliasForm(request.POST), set_alias)
    return redirect("registry:detail", pk=pk) if status == 200 else model_detail(request, pk, status=status)


@login_required
@require_POST
def model_delete(request, pk):
    model = _or_404(lambda: selectors.model_for_user(request.user, pk))

    def delete():
        services.model_delete(actor=request.user, model=model)
        return f"Model {model.name} deleted."

    status = run_action(request, delete)
    return redirect("registry:list") if status == 200 else model_detail(request, pk, status=status)


def _version_context(request, version):
    dataset_versions = list(_ready_dataset_versions(request.user, version.model))
    evaluate_form = EvaluateForm()
    evaluate_form.set_dataset_versions(dataset_versions)
    evaluation_list = list(selectors.version_evaluations(version))
    export_list = list(selectors.version_exports(version))
    attach_states([version, *evaluation_list, *export_list])
    best = max((e for e in evaluation_list if e.status == "ready"), key=lambda e: e.finished_at, default=None)
    return {
        "model": version.model,
        "version": version,
        "children": list(version.children.order_by("number")),
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
    version = _or_404(lambda: selectors.version_for_user(request.user, pk, number))
    return render(request, "registry/version.html", _version_context(request, version), status=status)


@login_required
def version_work_partial(request, pk, number):
    """Evaluations and exports, polled while any is running; reloads the page when they finish."""
    version = _or_404(lambda: selectors.version_for_user(request.user, pk, number))
    context = _version_context(request, version)
    response = render(request, "registry/_work.html", context)
    if not context["processing"] and request.GET.get("was") == "processing":
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def version_evaluate(request, pk, number):
    version = _or_404(lambda: selectors.version_for_user(request.user, pk, number))
    form = EvaluateForm(request.POST)
    form.set_dataset_versions(_ready_dataset_versions(request.user, version.model))

    def evaluate(data):
        dataset_version = version_for_user(request.user, *form.chosen_dataset_version())
        evaluations.evaluation_request(actor=request.user, version=version, dataset_version=dataset_version)
        return f"Evaluating v{version.number} on {dataset_version}."

    status = run_form_action(request, form, evaluate)
    return (
        redirect("registry:version", pk=pk, number=number)
        if status == 200
        else version_detail(request, pk, number, status=status)
    )


@login_required
@require_POST
def version_export(request, pk, number):
    version = _or_404(lambda: selectors.version_for_user(request.user, pk, number))

    def export():
        exports.export_request(actor=request.user, version=version)
        return f"Exporting v{version.number} to ONNX."

    status = run_action(request, export)
    return (
        redirect("registry:version", pk=pk, number=number)
        if status == 200
        else version_detail(request, pk, number, status=status)
    )
