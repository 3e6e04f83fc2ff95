"""HTML pages of jobs: the list with filters, and the job page with live progress, curves and log."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.selectors import membership_of
from apps.core.errors import NotFound
from apps.core.pages import run_action
from apps.jobs import selectors, services
from apps.jobs.filters import JobFilter
from apps.jobs.kinds import KINDS
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
    for job in page:
        job.summary = KINDS[job.kind].describe(job.spec) if job.kind in KINDS else ""
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
        "summary": KINDS[job.kind].describe(job.spec) if job.kind in KINDS else "",
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
