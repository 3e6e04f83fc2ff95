"""Experiments end to end on real jobs (inline workers): grid and auto, frontier, recommendation, promote."""

import pytest

from apps.experiments.models import Experiment, Trial
from apps.experiments.services import experiment_create, experiment_promote
from apps.registry.models import Evaluation

INT8 = [{"step": "quantize", "scheme": "int8_weight_only"}]
PRUNE_80 = [{"step": "prune", "sparsity": 0.8}]
STRUCTURED_50 = [{"step": "structured_prune", "ratio": 0.5}]


def test_a_grid_experiment_measures_every_recipe_and_recommends_the_smallest_within_target(
    world, digits, digits_model, run_tasks
):
    model, base = digits_model
    with run_tasks():
        experiment = experiment_create(
            actor=world.bob,
            team=world.acme,
            name="digits grid",
            base_version=base,
            train_dataset_version=digits,
            max_accuracy_drop=2.0,
            strategy="grid",
            budget=5,
            recipes=[INT8, PRUNE_80, STRUCTURED_50],
            finetune_epochs=2,
        )
    experiment.refresh_from_db()
    assert experiment.status == "succeeded", experiment.status_reason
    trials = list(experiment.trials.order_by("number"))
    assert [t.family for t in trials] == ["baseline", "quantize", "prune", "structured_prune"]
    assert all(t.status == "succeeded" for t in trials), [t.error for t in trials]
    for trial in trials:  # the figures are the registry's evaluation of the stored artifact
        evaluation = Evaluation.objects.get(pk=trial.evaluation_id)
        assert trial.artifact_bytes == evaluation.artifact_bytes == trial.version.bytes
        assert trial.accuracy == evaluation.accuracy
        assert trial.flops_per_sample == evaluation.flops_per_sample > 0
    baseline = trials[0]
    assert baseline.version == base
    assert trials[1].artifact_bytes <= 0.30 * baseline.artifact_bytes
    assert trials[2].nonzero_parameters < 0.3 * baseline.parameter_count
    assert trials[3].flops_per_sample < baseline.flops_per_sample
    within = [t for t in trials[1:] if t.accuracy >= baseline.accuracy - 0.02 - 1e-9]
    assert [t.within_target for t in trials[1:]] == [t in within for t in trials[1:]]
    if within:
        assert experiment.recommended == min(within, key=lambda t: (t.artifact_bytes, -t.accuracy))
    assert any(t.on_size_frontier for t in trials)
    for trial in trials[1:]:
        assert (trial.version.parent, trial.version.source) == (base, "compress")

    alias = experiment_promote(actor=world.bob, experiment=experiment, trial=trials[1], alias="production")
    assert alias.version == trials[1].version


def test_an_auto_experiment_searches_within_its_budget(world, digits, digits_model, run_tasks):
    _, base = digits_model
    with run_tasks():
        experiment = experiment_create(
            actor=world.bob,
            team=world.acme,
            name="digits auto",
            base_version=base,
            train_dataset_version=digits,
            max_accuracy_drop=1.0,
            strategy="auto",
            budget=6,
            finetune_epochs=1,
        )
    experiment.refresh_from_db()
    assert experiment.status == "succeeded", experiment.status_reason
    assert 1 <= experiment.trials.exclude(number=0).count() <= 6
    assert Trial.objects.filter(experiment=experiment, status="succeeded").count() >= 2


def test_a_viewer_cannot_start_an_experiment(world, digits, digits_model):
    from apps.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        experiment_create(
            actor=world.vera,
            team=world.acme,
            name="nope",
            base_version=digits_model[1],
            train_dataset_version=digits,
            recipes=[INT8],
            strategy="grid",
            budget=1,
        )
    assert not Experiment.objects.exists()


def test_a_lost_signal_is_recovered_by_the_periodic_reconcile(world, digits, digits_model, run_tasks):
    """A worker that dies between its job's end and the signal leaves the experiment running; reconcile closes it."""
    from apps.experiments import services
    from apps.experiments.services import experiments_reconcile
    from apps.jobs.signals import job_finished

    job_finished.disconnect(dispatch_uid="experiments-advance-on-job-finished")
    try:
        with run_tasks():
            experiment = experiment_create(
                actor=world.bob,
                team=world.acme,
                name="lost",
                base_version=digits_model[1],
                train_dataset_version=digits,
                strategy="grid",
                recipes=[INT8],
                budget=1,
            )
        experiment.refresh_from_db()
        assert experiment.status == "running"  # the jobs are done, but nobody told the experiment
        assert experiments_reconcile() == 1
    finally:
        job_finished.connect(services.on_job_finished, dispatch_uid="experiments-advance-on-job-finished")
    experiment.refresh_from_db()
    assert experiment.status == "succeeded"
    assert experiment.trials.filter(status="succeeded").count() == 2


def test_a_failed_trial_is_recorded_with_its_reason_and_the_experiment_goes_on(world, digits, digits_model, run_tasks):
    from apps.jobs.services import job_cancel

    with run_tasks():
        experiment = experiment_create(
            actor=world.bob,
            team=world.acme,
            name="one fails",
            base_version=digits_model[1],
            train_dataset_version=digits,
            strategy="grid",
            recipes=[INT8, PRUNE_80],
            budget=2,
            finetune_epochs=1,
        )
        # before the queued jobs run, one trial's job is cancelled
        pruning = experiment.trials.get(number=2)
        job_cancel(actor=world.bob, job=pruning.job)
    experiment.refresh_from_db()
    assert experiment.status == "succeeded", [(t.number, t.status, t.job.status) for t in experiment.trials.all()]
    pruning.refresh_from_db()
    assert pruning.status == "cancelled"
    assert experiment.trials.get(number=1).status == "succeeded"


def test_cancelling_an_experiment_cancels_its_unfinished_trials(world, digits, digits_model):
    from apps.experiments.services import experiment_cancel

    experiment = experiment_create(
        actor=world.bob,
        team=world.acme,
        name="stop",
        base_version=digits_model[1],
        train_dataset_version=digits,
        strategy="grid",
        recipes=[INT8, PRUNE_80],
        budget=2,
    )
    experiment_cancel(actor=world.bob, experiment=experiment)
    experiment.refresh_from_db()
    assert experiment.status == "cancelled"
    assert set(experiment.trials.values_list("status", flat=True)) == {"cancelled"}
    assert all(trial.job.status == "cancelled" for trial in experiment.trials.select_related("job"))


def test_the_search_stops_with_a_reason_when_its_creator_can_no_longer_start_trials(
    world, digits, digits_model, run_tasks
):
    from apps.accounts.models import Membership

    with run_tasks():
        experiment = experiment_create(
            actor=world.bob,
            team=world.acme,
            name="orphan",
            base_version=digits_model[1],
            train_dataset_version=digits,
            strategy="auto",
            budget=10,
            finetune_epochs=1,
        )
        first_round = experiment.trials.exclude(number=0).count()
        Membership.objects.filter(user=world.bob, team=world.acme).delete()
    experiment.refresh_from_db()
    assert experiment.status == "succeeded"
    assert experiment.trials.exclude(number=0).count() == first_round
    assert experiment.status_reason.startswith("the search stopped:")
