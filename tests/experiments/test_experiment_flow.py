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
