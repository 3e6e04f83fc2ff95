"""HTML pages of jobs: the list with filters, and the job page with live progress, curves and log."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.selectors import membership_of
from apps.core.errors import ApplicationError, NotFound
from apps.core.pages import form_errors_text, run_action
from apps.datasets.selectors import ready_versions_for
from apps.jobs import selectors, services
from apps.jobs.filters import JobFilter
from apps.jobs.forms import TrainForm
from apps.jobs.models import TERMINAL, JobKind, JobStatus


def _job_or_404(request, pk):
    try:
        return selectors.job_for_user(request.user, pk)
    except NotFound:
        raise Http404("Job not found.") from None


@login_required
def job_list(request):
    membership = current_membership(request)
    jobs = selectors.jobs_for_user(request.user).none()
    if membership is not None:
        jobs = selectors.jobs_for_user(request.user).filter(team=membership.team)
    filters = JobFilter(request.GET, queryset=jobs)
    page = list(filters.qs[:200])
    context = {
        "jobs": page,
        "statuses": JobStatus.choices,
        "kinds": JobKind.choices,
        "active": any(job.status not in TERMINAL for job in page),
    }
    template = "jobs/_rows.html" if request.htmx else "jobs/list.html"
    return render(request, template, context)


def _job_context(request, job):
    epochs = list(selectors.job_epochs(job))
    return {
        "job": job,
        "epochs": epochs,
        "curves": selectors.training_curves(epochs) if epochs else None,
        "log": selectors.job_log_tail(job),
        "result_link": selectors.job_result_link(job),
        "running": job.status not in TERMINAL,
        "can_write": membership_of(request.user, job.team).has_role(Role.MEMBER),
    }


@login_required
def job_detail(request, pk, status=200):
    job = _job_or_404(request, pk)
    return render(request, "jobs/detail.html", _job_context(request, job), status=status)


@login_required
def job_live(request, pk):
    """The live part of the job page (progress, curves, log), polled while the job is not finished."""
    job = _job_or_404(request, pk)
    return render(request, "jobs/_live.html", _job_context(request, job))


@login_required
@require_POST
def job_cancel(request, pk):
    job = _job_or_404(request, pk)
    status = run_action(
        request, lambda: f"Cancel requested for job {services.job_cancel(actor=request.user, job=job).pk}."
    )
    return redirect("jobs:detail", pk=pk) if status == 200 else job_detail(request, pk, status=status)


@login_required
@require_POST
def job_retry(request, pk):
    job = _job_or_404(request, pk)
    status = run_action(request, lambda: f"Job {services.job_retry(actor=request.user, job=job).pk} queued again.")
    return redirect("jobs:detail", pk=pk) if status == 200 else job_detail(request, pk, status=status)


@login_required
def model_train(request, pk):
    """The train form of a model's page (GET, loaded into it) and its submission (POST)."""
    from apps.registry.selectors import model_for_user

    try:
        model = model_for_user(request.user, pk)
    except NotFound:
        raise Http404("Model not found.") from None
    form = TrainForm(
        request.POST if request.method == "POST" else None,
        dataset_versions=ready_versions_for(model.team, model.task),
    )
    if request.method != "POST":
        return render(request, "jobs/_train_form.html", {"form": form, "model": model})
    status, job = _submit_training(request, form, model)
    if job is not None:
        url = reverse("jobs:detail", args=[job.pk])
        return HttpResponse(status=204, headers={"HX-Redirect": url}) if request.htmx else redirect(url)
    template = "jobs/_train_form.html" if request.htmx else "jobs/train.html"
    return render(request, template, {"form": form, "model": model}, status=status)


def _submit_training(request, form, model):
    if not form.is_valid():
        messages.error(request, form_errors_text(form))
        return 400, None
    try:
        job = services.job_submit(actor=request.user, team=model.team, kind="train", spec=form.spec(model.pk))
    except ApplicationError as error:
        messages.error(request, error.message)
        return error.status_code, None
    messages.success(request, f"Training job #{job.pk} submitted.")
    return 200, job
