"""HTML pages of datasets: list, create (upload with a progress bar), detail with preview."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
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
from apps.core.pages import form_errors_text, run_action
from apps.core.uploads import limit_uploads
from apps.core.work import attach_states
from apps.datasets import selectors, services
from apps.datasets.filters import DatasetFilter
from apps.datasets.forms import DatasetCreateForm, VersionSourceForm
from apps.datasets.models import DatasetVersion

CREATE_TEMPLATES = ("datasets/create.html", "datasets/_create_form.html")
VERSION_TEMPLATES = ("datasets/version_new.html", "datasets/_version_form.html")


def _or_404(lookup):
    try:
        return lookup()
    except NotFound:
        raise Http404("Not found.") from None


@login_required
def dataset_list(request):
    membership = current_membership(request)
    datasets = selectors.datasets_for_user(request.user).none()
    if membership is not None:
        datasets = selectors.datasets_for_user(request.user).filter(team=membership.team)
    filters = DatasetFilter(request.GET, queryset=datasets.order_by("name"))
    context = {
        "datasets": filters.qs,
        "filters": filters,
        "can_create": membership is not None and membership.has_role(Role.MEMBER),
    }
    return render(request, "datasets/list.html", context)


def _add_version(request, form, dataset) -> DatasetVersion:
    if form.cleaned_data["source"] == "bundled":
        return services.version_bundled(
            actor=request.user,
            dataset=dataset,
            name=form.cleaned_data["bundled"],
            params=form.synthetic_params(),
            seed=form.cleaned_data.get("seed") or 0,
        )
    return services.version_upload(
        actor=request.user,
        dataset=dataset,
        uploaded_file=form.cleaned_data["file"],
        source_format=form.cleaned_data.get("format") or None,
        options=form.upload_options(),
    )


def _form_response(request, page, partial, context, status):
    """The form again with the problem flashed; htmx gets only the form (swapped in place)."""
    template = partial if request.htmx else page
    return render(request, template, {**context, "partial": bool(request.htmx)}, status=status)


def _redirect(request, url):
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)


@accepts_uploads
@csrf_exempt  # checked below, once the upload size limit is in place
@login_required
def dataset_create(request):
    if request.method != "POST":
        return render(request, "datasets/create.html", {"form": DatasetCreateForm()})
    return _dataset_create_post(request, limit_uploads(request))


@csrf_protect
def _dataset_create_post(request, handler):
    form = DatasetCreateForm(request.POST, request.FILES)
    if handler.exceeded:
        messages.error(request, handler.refusal().message)
        return _form_response(request, *CREATE_TEMPLATES, {"form": form}, 413)
    membership = current_membership(request)
    if not form.is_valid() or membership is None:
        messages.error(request, form_errors_text(form) or "Join or create a team first.")
        return _form_response(request, *CREATE_TEMPLATES, {"form": form}, 400)
    try:
        with transaction.atomic():
            dataset = services.dataset_create(
                actor=request.user,
                team=membership.team,
                name=form.cleaned_data["name"],
                task=form.cleaned_data["task"],
                description=form.cleaned_data["description"],
            )
            version = _add_version(request, form, dataset)
    except ApplicationError as error:
        messages.error(request, error.message)
        return _form_response(request, *CREATE_TEMPLATES, {"form": form}, error.status_code)
    messages.success(request, f"Dataset {dataset.name} created; version {version.number} is being processed.")
    return _redirect(request, reverse("datasets:detail", args=[dataset.pk]))


@login_required
def dataset_detail(request, pk):
    return _detail_response(request, _or_404(lambda: selectors.dataset_for_user(request.user, pk)))


def _detail_response(request, dataset, status=200):
    versions = attach_states(selectors.dataset_versions(dataset))
    chosen = request.GET.get("version")
    selected = next((v for v in versions if str(v.number) == chosen), None) if chosen else None
    selected = selected or next((v for v in versions if v.status == DatasetVersion.Status.READY), None)
    context = {
        "dataset": dataset,
        "versions": versions,
        "selected": selected,
        "chart": selectors.class_count_chart(selected) if selected and selected.status == "ready" else None,
        "form": VersionSourceForm(),
        "can_write": membership_of(request.user, dataset.team).has_role(Role.MEMBER),
    }
    return render(request, "datasets/detail.html", context, status=status)


@accepts_uploads
@csrf_exempt  # checked below, once the upload size limit is in place
@login_required
@require_POST
def version_create(request, pk):
    return _version_create_post(request, pk, limit_uploads(request))


@csrf_protect
def _version_create_post(request, pk, handler):
    dataset = _or_404(lambda: selectors.dataset_for_user(request.user, pk))
    form = VersionSourceForm(request.POST, request.FILES)
    context = {"form": form, "dataset": dataset}
    if handler.exceeded:
        messages.error(request, handler.refusal().message)
        return _form_response(request, *VERSION_TEMPLATES, context, 413)
    if not form.is_valid():
        messages.error(request, form_errors_text(form))
        return _form_response(request, *VERSION_TEMPLATES, context, 400)
    try:
        version = _add_version(request, form, dataset)
    except ApplicationError as error:
        messages.error(request, error.message)
        return _form_response(request, *VERSION_TEMPLATES, context, error.status_code)
    messages.success(request, f"Version {version.number} is being processed.")
    return _redirect(request, reverse("datasets:detail", args=[dataset.pk]) + f"?version={version.number}")


@login_required
def version_status(request, pk, number):
    """The live progress of one version (htmx polls it); a finished version reloads the page."""
    version = _or_404(lambda: selectors.version_for_user(request.user, pk, number))
    attach_states([version])
    response = render(request, "datasets/_version_status.html", {"version": version})
    if version.status != DatasetVersion.Status.PROCESSING and request.GET.get("was") == "processing":
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def dataset_delete(request, pk):
    dataset = _or_404(lambda: selectors.dataset_for_user(request.user, pk))

    def delete():
        services.dataset_delete(actor=request.user, dataset=dataset)
        return f"Dataset {dataset.name} deleted."

    status = run_action(request, delete)
    return redirect("datasets:list") if status == 200 else _detail_response(request, dataset, status)
