"""HTML pages of experiments: the list, the form, and the experiment page with its live trade-off chart."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.selectors import membership_of
from apps.core.errors import NotFound
from apps.core.pages import run_action, run_form_action
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import datasets_for_user
from apps.experiments import selectors, services
from apps.experiments.filters import ExperimentFilter
from apps.experiments.forms import ExperimentForm
from apps.experiments.models import ExperimentStatus, Strategy, TrialStatus
from apps.registry.models import ModelVersion
from apps.registry.selectors import models_for_user

SORTABLE = {
    "number": "number",
    "accuracy": "accuracy",
    "bytes": "artifact_bytes",
    "parameters": "parameter_count",
    "nonzero": "nonzero_parameters",
    "flops": "flops_per_sample",
    "latency": "latency_ms",
}


def _experiment_or_404(request, pk):
    try:
        return selectors.experiment_for_user(request.user, pk)
    except NotFound:
        raise Http404("Experiment not found.") from None


@login_required
def experiment_list(request):
    membership = current_membership(request)
    experiments = selectors.experiments_for_user(request.user).none()
    if membership is not None:
        experiments = selectors.experiments_for_user(request.user).filter(team=membership.team)
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


def _form_choices(request, team):
    versions = (
        ModelVersion.objects.filter(model__in=models_for_user(request.user).filter(team=team), status="ready")
        .select_related("model")
        .order_by("model__name", "-number")
    )
    versions = [v for v in versions if not any(t.get("kind") == "quantize" for t in v.transforms)]
    dataset_versions = (
        DatasetVersion.objects.filter(dataset__in=datasets_for_user(request.user).filter(team=team), status="ready")
        .select_related("dataset")
        .order_by("dataset__name", "-number")
    )
    return {"versions": versions, "dataset_versions": list(dataset_versions)}


@login_required
def experiment_create(request):
    membership = current_membership(request)
    if membership is None:
        raise Http404("Join a team first.")
    choices = _form_choices(request, membership.team)
    initial = {}
    if request.GET.get("model") and request.GET.get("version"):
        initial["base_version"] = f"{request.GET['model']}:{request.GET['version']}"
    form = ExperimentForm(request.POST or None, initial=initial, **choices)
    status = 200
    if request.method == "POST":
        created = {}

        def create(data):
            created["experiment"] = _create_from_form(request, membership.team, data)
            return f"Experiment “{created['experiment'].name}” started."

        status = run_form_action(request, form, create)
        if "experiment" in created:
            return redirect("experiments:detail", pk=created["experiment"].pk)
    return render(request, "experiments/create.html", {"form": form}, status=status)


def _create_from_form(request, team, data):
    model_id, number = ExperimentForm.pair(data["base_version"])
    base = ModelVersion.objects.filter(model__team=team, model_id=model_id, number=number).first()
    dataset_id, dataset_number = ExperimentForm.pair(data["dataset_version"])
    train = DatasetVersion.objects.filter(dataset__team=team, dataset_id=dataset_id, number=dataset_number).first()
    evaluation = None
    if data.get("eval_dataset_version"):
        eval_id, eval_number = ExperimentForm.pair(data["eval_dataset_version"])
        evaluation = DatasetVersion.objects.filter(dataset__team=team, dataset_id=eval_id, number=eval_number).first()
    if base is None or train is None:
        raise NotFound("The chosen version or dataset is not in this team.")
    return services.experiment_create(
        actor=request.user,
        team=team,
        name=data["name"],
        base_version=base,
        train_dataset_version=train,
        eval_dataset_version=evaluation,
        max_accuracy_drop=data["max_accuracy_drop"],
        objective=data["objective"],
        strategy=data["strategy"],
        budget=data["budget"],
        recipes=data["recipes"] if data["strategy"] == Strategy.GRID else None,
        finetune_epochs=data["finetune_epochs"],
        learning_rate=data["learning_rate"],
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
    experiment = _experiment_or_404(request, pk)
    return render(request, "experiments/detail.html", _page_context(request, experiment), status=status)


@login_required
def experiment_live(request, pk):
    """The live part of the page (progress, chart, trials), polled while the experiment runs."""
    experiment = _experiment_or_404(request, pk)
    return render(request, "experiments/_live.html", _page_context(request, experiment))


@login_required
def experiment_csv(request, pk):
    return selectors.trials_csv_download(_experiment_or_404(request, pk))


@login_required
@require_POST
def experiment_cancel(request, pk):
    experiment = _experiment_or_404(request, pk)
    status = run_action(
        request,
        lambda: f"Experiment “{services.experiment_cancel(actor=request.user, experiment=experiment).name}” cancelled.",
    )
    return redirect("experiments:detail", pk=pk) if status == 200 else experiment_detail(request, pk, status=status)


@login_required
@require_POST
def experiment_promote(request, pk):
    experiment = _experiment_or_404(request, pk)
    number = request.POST.get("trial", "")
    if not number.isdigit():
        messages.error(request, "trial: choose the trial whose version to promote.")
        return experiment_detail(request, pk, status=400)
    trial = experiment.trials.select_related("version").filter(number=int(number)).first()
    if trial is None:
        raise Http404("Trial not found.")
    alias = (request.POST.get("alias") or "production").strip()

    def promote():
        services.experiment_promote(actor=request.user, experiment=experiment, trial=trial, alias=alias)
        return f"“{alias}” now points at v{trial.version.number} ({trial.label})."

    status = run_action(request, promote)
    return redirect("experiments:detail", pk=pk) if status == 200 else experiment_detail(request, pk, status=status)
