"""HTML pages of experiments: the list, the form, and the experiment page with its live trade-off chart."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.selectors import membership_of
from apps.core.pages import attempt, attempt_form, found_or_404, redirect_or_page
from apps.datasets.selectors import ready_versions_of_team
from apps.experiments import selectors, services
from apps.experiments.filters import ExperimentFilter
from apps.experiments.forms import FORM_SETTINGS, ExperimentForm
from apps.experiments.models import ExperimentStatus, Strategy, TrialStatus

SORTABLE = {
    "number": "number",
    "accuracy": "accuracy",
    "bytes": "artifact_bytes",
    "parameters": "parameter_count",
    "nonzero": "nonzero_parameters",
    "flops": "flops_per_sample",
    "latency": "latency_ms",
}


@login_required
def experiment_list(request):
    membership = current_membership(request)
    experiments = selectors.team_experiments(request.user, membership.team if membership else None)
    page = list(ExperimentFilter(request.GET, queryset=experiments).qs[:200])
    baselines = selectors.baselines_of(page)
    for experiment in page:
        experiment.reduction = selectors.size_reduction(experiment, baselines.get(experiment.pk))
    context = {
        "experiments": page,
        "statuses": ExperimentStatus.choices,
        "can_write": membership is not None and membership.has_role(Role.MEMBER),
    }
    return render(request, "experiments/list.html", context)


def _form_choices(team):
    return {"versions": selectors.compressible_versions(team), "dataset_versions": list(ready_versions_of_team(team))}


@login_required
def experiment_create(request):
    membership = current_membership(request)
    if membership is None:
        raise Http404("Join a team first.")
    choices = _form_choices(membership.team)
    initial = {}
    if request.GET.get("model") and request.GET.get("version"):
        initial["base_version"] = f"{request.GET['model']}:{request.GET['version']}"
    form = ExperimentForm(request.POST or None, initial=initial, **choices)
    if request.method != "POST":
        return render(request, "experiments/create.html", {"form": form})
    outcome = attempt_form(
        request,
        form,
        lambda data: _create_from_form(request, membership.team, data),
        success=lambda experiment: f"Experiment “{experiment.name}” started.",
    )
    return redirect_or_page(
        request,
        outcome,
        lambda experiment: reverse("experiments:detail", args=[experiment.pk]),
        lambda status: render(request, "experiments/create.html", {"form": form}, status=status),
    )


def _create_from_form(request, team, data):
    """The experiment the form describes; a version or dataset the team does not have is refused, never replaced."""
    base = selectors.team_model_version(team, *ExperimentForm.pair(data["base_version"]))
    train = selectors.team_dataset_version(team, *ExperimentForm.pair(data["dataset_version"]))
    evaluation = None
    if data.get("eval_dataset_version"):
        pair = ExperimentForm.pair(data["eval_dataset_version"])
        evaluation = selectors.team_dataset_version(team, *pair, field="eval_dataset_version")
    return services.experiment_create(
        actor=request.user,
        team=team,
        name=data["name"],
        base_version=base,
        train_dataset_version=train,
        eval_dataset_version=evaluation,
        recipes=data["recipes"] if data["strategy"] == Strategy.GRID else None,
        **{param.name: data[param.name] for param in FORM_SETTINGS},
    )


def _page_context(request, experiment):
    trials = list(selectors.trials_of(experiment))
    sort = request.GET.get("sort", "number")
    key = SORTABLE.get(sort.lstrip("-"), "number")
    ordered = sorted(
        trials, key=lambda t: (getattr(t, key) is None, getattr(t, key) or 0), reverse=sort.startswith("-")
    )
    baseline = selectors.baseline_of(trials)
    finished = [t for t in trials if t.number and t.status not in (TrialStatus.QUEUED, TrialStatus.RUNNING)]
    return {
        "experiment": experiment,
        "trials": ordered,
        "sort": sort,
        "baseline": baseline,
        "chart": selectors.tradeoff_chart(experiment, trials) if any(t.accuracy is not None for t in trials) else None,
        "running": experiment.status == ExperimentStatus.RUNNING,
        "progress": len(finished) / max(1, len([t for t in trials if t.number])),
        "finished_count": len(finished),
        "trial_count": len([t for t in trials if t.number]),
        "reduction": selectors.size_reduction(experiment, baseline),
        "can_write": membership_of(request.user, experiment.team).has_role(Role.MEMBER),
    }


@login_required
def experiment_detail(request, pk, status=200):
    experiment = found_or_404(selectors.experiment_for_user, request.user, pk)
    return render(request, "experiments/detail.html", _page_context(request, experiment), status=status)


@login_required
def experiment_live(request, pk):
    """The live part of the page (progress, chart, trials), polled while the experiment runs."""
    experiment = found_or_404(selectors.experiment_for_user, request.user, pk)
    return render(request, "experiments/_live.html", _page_context(request, experiment))


@login_required
def experiment_csv(request, pk):
    return selectors.trials_csv_download(found_or_404(selectors.experiment_for_user, request.user, pk))


@login_required
@require_POST
def experiment_cancel(request, pk):
    experiment = found_or_404(selectors.experiment_for_user, request.user, pk)
    outcome = attempt(
        request,
        lambda: services.experiment_cancel(actor=request.user, experiment=experiment),
        success=f"Experiment “{experiment.name}” cancelled.",
    )
    return _back_to_experiment(request, outcome, pk)


@login_required
@require_POST
def experiment_promote(request, pk):
    experiment = found_or_404(selectors.experiment_for_user, request.user, pk)
    number = request.POST.get("trial", "")
    if not number.isdigit():
        messages.error(request, "trial: choose the trial whose version to promote.")
        return experiment_detail(request, pk, status=400)
    trial = found_or_404(selectors.trial_of, experiment, int(number))
    alias = (request.POST.get("alias") or "production").strip()
    outcome = attempt(
        request,
        lambda: services.experiment_promote(actor=request.user, experiment=experiment, trial=trial, alias=alias),
        success=lambda moved: f"“{moved.name}” now points at v{trial.version.number} ({trial.label}).",
    )
    return _back_to_experiment(request, outcome, pk)


def _back_to_experiment(request, outcome, pk):
    return redirect_or_page(
        request,
        outcome,
        reverse("experiments:detail", args=[pk]),
        lambda status: experiment_detail(request, pk, status=status),
    )
