"""HTML pages of datasets: list, create (upload with a progress bar), detail with preview."""

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.selectors import membership_of
from apps.core.errors import ApplicationError
from apps.core.pages import attempt, attempt_form, found_or_404, redirect_or_page, upload_page
from apps.core.uploads import limit_uploads
from apps.core.work import attach_states
from apps.datasets import selectors, services
from apps.datasets.filters import DatasetFilter
from apps.datasets.forms import DatasetCreateForm, VersionSourceForm
from apps.datasets.models import DatasetVersion

CREATE_TEMPLATES = ("datasets/create.html", "datasets/_create_form.html")
VERSION_TEMPLATES = ("datasets/version_new.html", "datasets/_version_form.html")


def _limit_uploads(request):
    """The upload limit of dataset files, looked up in this module per request (a test watches it)."""
    return limit_uploads(request)


@login_required
def dataset_list(request):
    membership = current_membership(request)
    datasets = selectors.team_datasets(request.user, membership.team if membership else None)
    filters = DatasetFilter(request.GET, queryset=datasets)
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


def _create_with_version(request, membership, form) -> DatasetVersion:
    """The dataset and its first version, both or neither."""
    if membership is None:
        raise ApplicationError("Join or create a team first.")
    with transaction.atomic():
        dataset = services.dataset_create(
            actor=request.user,
            team=membership.team,
            name=form.cleaned_data["name"],
            task=form.cleaned_data["task"],
            description=form.cleaned_data["description"],
        )
        return _add_version(request, form, dataset)


def _form_response(request, page, partial, context, status):
    """The form again with the problem flashed; htmx gets only the form (swapped in place)."""
    template = partial if request.htmx else page
    return render(request, template, {**context, "partial": bool(request.htmx)}, status=status)


@upload_page(limit=_limit_uploads)
def dataset_create(request):
    if request.method != "POST":
        return render(request, "datasets/create.html", {"form": DatasetCreateForm()})
    form = DatasetCreateForm(request.POST, request.FILES)
    outcome = attempt_form(
        request,
        form,
        lambda data: _create_with_version(request, current_membership(request), form),
        success=lambda v: f"Dataset {v.dataset.name} created; version {v.number} is being processed.",
    )
    return redirect_or_page(
        request,
        outcome,
        lambda version: reverse("datasets:detail", args=[version.dataset_id]),
        lambda status: _form_response(request, *CREATE_TEMPLATES, {"form": form}, status),
        htmx=True,
    )


@login_required
def dataset_detail(request, pk):
    return _detail_response(request, found_or_404(selectors.dataset_for_user, request.user, pk))


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


@upload_page(post_only=True, limit=_limit_uploads)
def version_create(request, pk):
    dataset = found_or_404(selectors.dataset_for_user, request.user, pk)
    form = VersionSourceForm(request.POST, request.FILES)
    outcome = attempt_form(
        request,
        form,
        lambda data: _add_version(request, form, dataset),
        success=lambda version: f"Version {version.number} is being processed.",
    )
    return redirect_or_page(
        request,
        outcome,
        lambda version: reverse("datasets:detail", args=[dataset.pk]) + f"?version={version.number}",
        lambda status: _form_response(request, *VERSION_TEMPLATES, {"form": form, "dataset": dataset}, status),
        htmx=True,
    )


@login_required
def version_status(request, pk, number):
    """The live progress of one version (htmx polls it); a finished version reloads the page."""
    version = found_or_404(selectors.version_for_user, request.user, pk, number)
    attach_states([version])
    response = render(request, "datasets/_version_status.html", {"version": version})
    if version.status != DatasetVersion.Status.PROCESSING and request.GET.get("was") == "processing":
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def dataset_delete(request, pk):
    dataset = found_or_404(selectors.dataset_for_user, request.user, pk)
    outcome = attempt(
        request,
        lambda: services.dataset_delete(actor=request.user, dataset=dataset),
        success=f"Dataset {dataset.name} deleted.",
    )
    return redirect_or_page(
        request, outcome, "datasets:list", lambda status: _detail_response(request, dataset, status)
    )
