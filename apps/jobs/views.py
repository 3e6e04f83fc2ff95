"""HTML pages of jobs: the list with filters, the job page with live progress, curves and log, and the train form."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.selectors import membership_of
from apps.core.pages import attempt, attempt_form, found_or_404, redirect_or_page
from apps.datasets.selectors import ready_versions_for
from apps.jobs import selectors, services
from apps.jobs.filters import JobFilter
from apps.jobs.forms import TrainForm
from apps.jobs.models import TERMINAL, JobKind, JobStatus
from apps.registry.selectors import model_for_user


@login_required
def job_list(request):
    membership = current_membership(request)
    jobs = selectors.team_jobs(request.user, membership.team if membership else None)
    page = list(JobFilter(request.GET, queryset=jobs).qs[:200])
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
        "waiting": selectors.job_waiting(job),
        "result_link": selectors.job_result_link(job),
        "rank_nodes": selectors.job_rank_nodes(job),
        "running": job.status not in TERMINAL,
        "can_write": membership_of(request.user, job.team).has_role(Role.MEMBER),
    }


@login_required
def job_detail(request, pk, status=200):
    job = found_or_404(selectors.job_for_user, request.user, pk)
    return render(request, "jobs/detail.html", _job_context(request, job), status=status)


@login_required
def job_live(request, pk):
    """The live part of the job page (progress, curves, log), polled while the job is not finished."""
    job = found_or_404(selectors.job_for_user, request.user, pk)
    return render(request, "jobs/_live.html", _job_context(request, job))


@login_required
@require_POST
def job_cancel(request, pk):
    job = found_or_404(selectors.job_for_user, request.user, pk)
    outcome = attempt(
        request, lambda: services.job_cancel(actor=request.user, job=job), success=f"Cancel requested for job {pk}."
    )
    return _back_to_job(request, outcome, pk)


@login_required
@require_POST
def job_retry(request, pk):
    job = found_or_404(selectors.job_for_user, request.user, pk)
    outcome = attempt(
        request, lambda: services.job_retry(actor=request.user, job=job), success=f"Job {pk} queued again."
    )
    return _back_to_job(request, outcome, pk)


def _back_to_job(request, outcome, pk):
    return redirect_or_page(
        request, outcome, reverse("jobs:detail", args=[pk]), lambda status: job_detail(request, pk, status=status)
    )


@login_required
def model_train(request, pk):
    """The train form of a model's page (GET, loaded into it by htmx) and its submission (POST)."""
    model = found_or_404(model_for_user, request.user, pk)
    form = TrainForm(
        request.POST if request.method == "POST" else None,
        dataset_versions=ready_versions_for(model.team, model.task),
    )
    if request.method != "POST":
        return render(request, "jobs/_train_form.html", {"form": form, "model": model})
    outcome = attempt_form(
        request,
        form,
        lambda data: services.job_submit(actor=request.user, team=model.team, kind="train", spec=form.spec(model.pk)),
        success=lambda job: f"Training job #{job.pk} submitted.",
    )
    template = "jobs/_train_form.html" if request.htmx else "jobs/train.html"
    return redirect_or_page(
        request,
        outcome,
        lambda job: reverse("jobs:detail", args=[job.pk]),
        lambda status: render(request, template, {"form": form, "model": model}, status=status),
        htmx=True,
    )
