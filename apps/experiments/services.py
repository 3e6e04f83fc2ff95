"""Experiments: create one, advance it as its trials' jobs finish, cancel it, promote a result.

An experiment is driven by its trials' jobs: each job that finishes calls `experiment_advance`
(through the jobs' `job_finished` signal), which copies the finished trials' measurements
from their evaluations, asks the search for the next recipes, submits them as jobs, and
closes the experiment with its frontier and recommendation once nothing is left to run.
`experiment_advance` derives everything from the rows, so running it again (the periodic
reconcile does, in case a worker died between the job's end and the signal) is harmless.
"""

import logging

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Role, Team
from apps.accounts.services import require_role
from apps.core.errors import ApplicationError, Conflict, PermissionDenied
from apps.core.params import Param, Params, invalid
from apps.datasets.models import DatasetVersion
from apps.experiments import search
from apps.experiments.compression.recipes import describe, family
from apps.experiments.frontier import Point, pareto_frontier, recommended
from apps.experiments.kinds import FINETUNE_PARAMS, checked_recipe, compressible_base
from apps.experiments.models import Experiment, ExperimentStatus, Objective, Strategy, Trial, TrialStatus
from apps.jobs.models import TERMINAL, Job, JobStatus
from apps.jobs.services import job_cancel, job_submit
from apps.registry.evaluations import check_compatible
from apps.registry.models import Evaluation, ModelVersion
from apps.registry.services import alias_set

logger = logging.getLogger(__name__)

MAX_BUDGET = 200
TRIAL_STATUS = {
    JobStatus.QUEUED: TrialStatus.QUEUED,
    JobStatus.SCHEDULED: TrialStatus.QUEUED,
    JobStatus.RUNNING: TrialStatus.RUNNING,
    JobStatus.SUCCEEDED: TrialStatus.SUCCEEDED,
    JobStatus.FAILED: TrialStatus.FAILED,
    JobStatus.CANCELLED: TrialStatus.CANCELLED,
}
FINISHED = (TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.CANCELLED)


# The settings of an experiment, declared once: the service checks them, and the API serializer
# and the page's form are derived from them (apps.core.params).
EXPERIMENT_PARAMS = Params(
    Param(
        "max_accuracy_drop",
        float,
        1.0,
        low=0,
        high=100,
        label="Allowed accuracy drop (points)",
        help="How many accuracy points below the base version a recommended model may be.",
    ),
    Param.of_choices("objective", Objective, Objective.SIZE.value, help="What the recommendation minimizes."),
    Param.of_choices("strategy", Strategy, Strategy.AUTO.value),
    Param("budget", int, 20, low=1, high=MAX_BUDGET, label="Trial budget", help="Compressed versions to try."),
    *FINETUNE_PARAMS.only("finetune_epochs", "learning_rate", "seed"),
)


def _grid(recipes, budget: int) -> list[list[dict]]:
    if not isinstance(recipes, list) or not recipes:
        raise invalid("recipes", "a grid experiment needs a non-empty list of recipes")
    checked = [checked_recipe(recipe, f"recipes.{index}") for index, recipe in enumerate(recipes)]
    keys = [search.recipe_key(recipe) for recipe in checked]
    if len(set(keys)) != len(keys):
        duplicate = next(index for index, key in enumerate(keys) if keys.index(key) != index)
        raise invalid(f"recipes.{duplicate}", "is listed twice")
    if len(checked) > budget:
        raise invalid("recipes", f"{len(checked)} recipes exceed the budget of {budget} trials")
    return checked


@transaction.atomic
def experiment_create(
    *,
    actor,
    team: Team,
    name: str,
    base_version: ModelVersion,
    train_dataset_version: DatasetVersion,
    eval_dataset_version: DatasetVersion | None = None,
    recipes: list | None = None,
    description: str = "",
    **settings,
) -> Experiment:
    """Create the experiment and start its baseline and first trials.

    `settings` are EXPERIMENT_PARAMS (max_accuracy_drop, objective, strategy, budget,
    finetune_epochs, learning_rate, seed); the ones not given take their declared defaults.
    """
    require_role(actor, team, Role.MEMBER)
    name = _free_name(team, name)
    eval_dataset_version = eval_dataset_version or train_dataset_version
    _check_versions(team, base_version, train_dataset_version, eval_dataset_version)
    settings = EXPERIMENT_PARAMS.clean(settings)
    grid = _grid(recipes, settings["budget"]) if settings["strategy"] == Strategy.GRID else []
    if settings["strategy"] == Strategy.AUTO and recipes:
        raise invalid("recipes", "the auto strategy chooses its own recipes; use the grid strategy to list them")
    experiment = Experiment.objects.create(
        team=team,
        name=name[:100],
        description=description,
        base_version=base_version,
        train_dataset_version=train_dataset_version,
        eval_dataset_version=eval_dataset_version,
        recipes=grid,
        created_by=actor,
        **settings,
    )
    _start_baseline(experiment, actor)
    first = grid or search.next_recipes(_space(experiment), {}, experiment.budget)
    for number, recipe in enumerate(first, start=1):
        _start_trial(experiment, number, recipe, actor)
    return experiment


def _free_name(team: Team, name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise invalid("name", "is required")
    if team.experiments.filter(name=name).exists():
        raise Conflict(
            f"name: an experiment named '{name}' already exists in {team.slug}.", fields={"name": ["Taken."]}
        )
    return name


def _check_versions(team: Team, base: ModelVersion, train: DatasetVersion, evaluation: DatasetVersion) -> None:
    """The base version and both dataset versions are the team's, ready, and fit one another."""
    if base.model.team_id != team.pk or train.dataset.team_id != team.pk:
        raise invalid("base_version", "must belong to the experiment's team")
    compressible_base(base.model, base.number)
    if evaluation.dataset.team_id != team.pk:
        raise invalid("eval_dataset_version", "must belong to the experiment's team")
    for dataset_version in {train, evaluation}:
        if dataset_version.status != DatasetVersion.Status.READY:
            raise invalid("dataset_version", f"{dataset_version} is {dataset_version.status}, not ready")
        check_compatible(base, dataset_version)


def _space(experiment: Experiment) -> list[search.Ladder]:
    space = search.default_space(experiment.objective)
    return [
        search.Ladder(
            ladder.family,
            [checked_recipe(recipe) for recipe in ladder.points],
            ladder.probe,
            [checked_recipe(recipe) for recipe in ladder.pipelines],
        )
        for ladder in space
    ]


def _start_baseline(experiment: Experiment, actor) -> Trial:
    base, dataset_version = experiment.base_version, experiment.eval_dataset_version
    job = job_submit(
        actor=actor,
        team=experiment.team,
        kind="evaluate",
        spec={
            "model": base.model_id,
            "version": base.number,
            "dataset": dataset_version.dataset_id,
            "dataset_version": dataset_version.number,
        },
    )
    return Trial.objects.create(
        experiment=experiment,
        number=0,
        recipe=[],
        recipe_key=search.recipe_key([]),
        label=f"base v{base.number}",
        family="baseline",
        job=job,
    )


def _start_trial(experiment: Experiment, number: int, recipe: list[dict], actor) -> Trial:
    base = experiment.base_version
    job = job_submit(
        actor=actor,
        team=experiment.team,
        kind="compress",
        spec={
            "model": base.model_id,
            "base_version": base.number,
            "dataset": experiment.train_dataset_version.dataset_id,
            "dataset_version": experiment.train_dataset_version.number,
            "eval_dataset": experiment.eval_dataset_version.dataset_id,
            "eval_dataset_version": experiment.eval_dataset_version.number,
            "recipe": recipe,
            "finetune_epochs": experiment.finetune_epochs,
            "learning_rate": experiment.learning_rate,
            "seed": experiment.seed,
            "label": describe(recipe)[:100],
            "experiment": experiment.pk,
        },
    )
    return Trial.objects.create(
        experiment=experiment,
        number=number,
        recipe=recipe,
        recipe_key=search.recipe_key(recipe),
        label=describe(recipe)[:200],
        family=family(recipe),
        job=job,
    )


# --- advancing -------------------------------------------------------------------------------------------------


def _copy_results(trial: Trial, job: Job) -> None:
    """Bring a trial up to date with its job; a finished one gets its version's measured figures."""
    trial.status = TRIAL_STATUS[job.status]
    if trial.status == TrialStatus.SUCCEEDED:
        evaluation = Evaluation.objects.select_related("version").filter(pk=job.result.get("evaluation")).first()
        if evaluation is None or evaluation.status != Evaluation.Status.READY:
            trial.status, trial.error = TrialStatus.FAILED, "the job finished without a measured version"
        else:
            trial.evaluation, trial.version = evaluation, evaluation.version
            trial.accuracy = evaluation.accuracy
            trial.artifact_bytes = evaluation.artifact_bytes
            trial.parameter_count = evaluation.parameter_count
            trial.nonzero_parameters = evaluation.nonzero_parameters
            trial.flops_per_sample = evaluation.flops_per_sample
            trial.latency_ms = evaluation.latency_ms
    elif trial.status in (TrialStatus.FAILED, TrialStatus.CANCELLED):
        trial.error = job.status_reason[:2000]
    if trial.status in FINISHED:
        trial.finished_at = job.finished_at or timezone.now()


def experiment_advance(experiment_id: int) -> Experiment | None:
    """Sync the trials with their jobs, start what the search asks for next, finish when all is done."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().filter(pk=experiment_id).first()
        if experiment is None or experiment.status != ExperimentStatus.RUNNING:
            return experiment
        trials = list(experiment.trials.select_related("job"))
        for trial in trials:
            if trial.status not in FINISHED and trial.job is not None:
                _copy_results(trial, trial.job)
                trial.save()
            elif trial.job is None and trial.status not in FINISHED:
                trial.status, trial.error = TrialStatus.FAILED, "its job was deleted"
                trial.save()
        baseline = next(trial for trial in trials if trial.is_baseline)
        if baseline.status in (TrialStatus.FAILED, TrialStatus.CANCELLED):
            return _close(
                experiment,
                trials,
                ExperimentStatus.FAILED,
                f"the base version could not be measured: {baseline.error or baseline.status}",
            )
        if baseline.status == TrialStatus.SUCCEEDED:
            _judge(experiment, trials, baseline)
            if experiment.strategy == Strategy.AUTO:
                trials += _continue_search(experiment, trials)
        if all(trial.status in FINISHED for trial in trials):
            return _close(experiment, trials, ExperimentStatus.SUCCEEDED, experiment.status_reason)
        return experiment


def _minimum_accuracy(experiment: Experiment, baseline: Trial) -> float:
    return baseline.accuracy - experiment.max_accuracy_drop / 100 - 1e-9


def _judge(experiment: Experiment, trials: list[Trial], baseline: Trial) -> None:
    minimum = _minimum_accuracy(experiment, baseline)
    for trial in trials:
        within = (
            trial.accuracy >= minimum
            if trial.status == TrialStatus.SUCCEEDED
            else (False if trial.status in FINISHED else None)
        )
        if trial.within_target != within:
            trial.within_target = within
            Trial.objects.filter(pk=trial.pk).update(within_target=within)


def _continue_search(experiment: Experiment, trials: list[Trial]) -> list[Trial]:
    outcomes = {
        trial.recipe_key: trial.within_target if trial.status in FINISHED else None
        for trial in trials
        if not trial.is_baseline
    }
    used = len(trials) - 1
    proposals = search.next_recipes(_space(experiment), outcomes, experiment.budget - used)
    number = max(trial.number for trial in trials)
    started = []
    for recipe in proposals:
        number += 1
        try:
            with transaction.atomic():
                started.append(_start_trial(experiment, number, recipe, experiment.created_by))
        except ApplicationError as error:  # e.g. its creator left the team: the search stops here
            experiment.status_reason = f"the search stopped: {error.message}"
            Experiment.objects.filter(pk=experiment.pk).update(status_reason=experiment.status_reason)
            break
    return started


def _points(trials: list[Trial], cost: str) -> list[Point]:
    return [
        Point(trial.number, getattr(trial, cost), trial.accuracy)
        for trial in trials
        if trial.status == TrialStatus.SUCCEEDED and getattr(trial, cost) is not None
    ]


def _close(experiment: Experiment, trials: list[Trial], status: str, reason: str) -> Experiment:
    by_number = {trial.number: trial for trial in trials}
    size_frontier = {p.key for p in pareto_frontier(_points(trials, "artifact_bytes"))}
    latency_frontier = {p.key for p in pareto_frontier(_points(trials, "latency_ms"))}
    for trial in trials:
        Trial.objects.filter(pk=trial.pk).update(
            on_size_frontier=trial.number in size_frontier, on_latency_frontier=trial.number in latency_frontier
        )
    best = None
    baseline = by_number.get(0)
    if status == ExperimentStatus.SUCCEEDED and baseline is not None and baseline.accuracy is not None:
        cost = "artifact_bytes" if experiment.objective == Objective.SIZE else "latency_ms"
        base_cost = getattr(baseline, cost)
        candidates = [
            point for point in _points(trials, cost) if point.key != 0 and (base_cost is None or point.cost < base_cost)
        ]
        best = recommended(candidates, minimum_accuracy=_minimum_accuracy(experiment, baseline))
        if best is None:
            measure = "smaller" if cost == "artifact_bytes" else "faster"
            reason = (
                f"no trial stayed within {experiment.max_accuracy_drop:g} points of the base version "
                f"and was {measure} than it"
            )
    experiment.recommended = by_number[best.key] if best else None
    experiment.status, experiment.status_reason, experiment.finished_at = status, reason, timezone.now()
    experiment.save(update_fields=["recommended", "status", "status_reason", "finished_at"])
    return experiment


def experiments_reconcile() -> int:
    """Advance every running experiment (after a lost signal); returns how many were looked at."""
    ids = list(Experiment.objects.filter(status=ExperimentStatus.RUNNING).values_list("pk", flat=True))
    for experiment_id in ids:
        try:
            experiment_advance(experiment_id)
        except Exception:  # one broken experiment must not stop the others
            logger.exception("advancing experiment %s failed", experiment_id)
    return len(ids)


def on_job_finished(sender, job: Job, **kwargs) -> None:
    experiment_id = (job.spec or {}).get("experiment") if job.kind == "compress" else None
    if experiment_id is None:
        trial = Trial.objects.filter(job=job).only("experiment_id").first()
        experiment_id = trial.experiment_id if trial else None
    if experiment_id is not None:
        experiment_advance(experiment_id)


# --- cancelling, promoting -------------------------------------------------------------------------------------


def experiment_cancel(*, actor, experiment: Experiment) -> Experiment:
    """Stop the search: the experiment closes on what has finished, and its unfinished trials' jobs are cancelled."""
    require_role(actor, experiment.team, Role.MEMBER)
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status != ExperimentStatus.RUNNING:
            raise Conflict(
                f"status: the experiment is {experiment.status}; only a running one can be cancelled.",
                fields={"status": [experiment.status]},
            )
        _close(
            experiment,
            list(experiment.trials.all()),
            ExperimentStatus.CANCELLED,
            f"cancelled by {actor.get_username()}",
        )
        unfinished = list(experiment.trials.select_related("job__team").exclude(status__in=FINISHED))
        Trial.objects.filter(pk__in=[trial.pk for trial in unfinished]).update(
            status=TrialStatus.CANCELLED, error="the experiment was cancelled", finished_at=timezone.now()
        )
    for trial in unfinished:
        if trial.job is not None and trial.job.status not in TERMINAL:
            job_cancel(actor=actor, job=trial.job)
    return experiment


def experiment_delete(*, actor, experiment: Experiment) -> None:
    """Delete a finished experiment and its trials (the versions its trials made stay in the registry)."""
    membership = require_role(actor, experiment.team, Role.MEMBER)
    if not membership.has_role(Role.ADMIN) and experiment.created_by_id != actor.pk:
        raise PermissionDenied("Only an admin or the member who started this experiment can delete it.")
    if experiment.status == ExperimentStatus.RUNNING:
        raise Conflict("status: the experiment is running; cancel it first.", fields={"status": ["running"]})
    experiment.delete()


def experiment_promote(*, actor, experiment: Experiment, trial: Trial, alias: str = "production"):
    """Point `alias` of the base model at the trial's version (the registry checks roles and the name)."""
    if trial.experiment_id != experiment.pk or trial.version is None:
        raise invalid("trial", "must be a finished trial of this experiment with a stored version")
    return alias_set(actor=actor, model=experiment.base_version.model, name=alias, version=trial.version)
