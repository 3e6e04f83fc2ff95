"""The step table: one entry per step kind is all validation, naming, running and rebuilding need."""

import numpy as np
import pytest
import torch
from torch import nn

from apps.datasets.loading import VersionSplit
from apps.experiments.compression import rebuilding  # noqa: F401 (registers the transforms)
from apps.experiments.compression.params import Number
from apps.experiments.compression.pipeline import FinetuneSettings, compress, training_epochs
from apps.experiments.compression.recipes import RecipeError, describe, family, validate_recipe
from apps.experiments.compression.steps import STEP_KINDS, Rebuild, StepKind, register_step, step_param
from apps.experiments.sweeps import SweepError, parse_numbers
from apps.registry.architectures import build_model
from apps.registry.rebuild import TRANSFORMS, rebuild_module
from apps.registry.weights import load_weights, save_weights

SPEC = {"family": "mlp", "hidden_sizes": [16]}
STUDENT = {"family": "mlp", "hidden_sizes": [8]}


class Scaled(nn.Module):
    """The throwaway method's result: the module with its logits multiplied by a factor."""

    def __init__(self, inner: nn.Module, factor: float):
        super().__init__()
        self.inner, self.factor = inner, factor

    def forward(self, x):
        return self.inner(x) * self.factor


def _scale(module, step, run):
    run.log(f"{run.where}: logits times {step['factor']:g}")
    run.transforms.append({"kind": "test_scaled", "factor": step["factor"]})
    return Scaled(module, step["factor"])


@pytest.fixture
def scale_step():
    """A method added the way a new one is: one entry, registered, and nothing else edited."""
    kind = register_step(
        StepKind(
            name="test_scale",
            params=(Number("factor", 0.5, 4, default=2.0, help="what the logits are multiplied by"),),
            apply=_scale,
            describe=lambda step: f"scale x{step['factor']:g}",
            family="test_scale",
            rebuilds=(
                Rebuild(
                    "test_scaled", "structure", lambda module, transform, weights: Scaled(module, transform["factor"])
                ),
            ),
        )
    )
    yield kind
    STEP_KINDS.pop(kind.name)
    TRANSFORMS.pop("test_scaled")


def _mlp(features=12, classes=3):
    torch.manual_seed(0)
    return build_model(SPEC, input_shape=(features,), num_classes=classes).eval()


def _compress(recipe, module=None, splits=(None, None), epochs=0, **hooks):
    return compress(
        module or _mlp(),
        spec=SPEC,
        transforms=[],
        recipe=validate_recipe(recipe),
        input_shape=(12,),
        num_classes=3,
        splits=splits,
        settings=FinetuneSettings(epochs=epochs),
        **hooks,
    )


def _rebuilt(tmp_path, result):
    save_weights(tmp_path / "w.safetensors", result.state)
    weights = load_weights(tmp_path / "w.safetensors")
    return rebuild_module(result.spec, input_shape=(12,), num_classes=3, transforms=result.transforms, weights=weights)


def test_a_new_step_entry_is_validated_named_run_and_rebuilt(scale_step, tmp_path):
    assert validate_recipe([{"step": "test_scale"}]) == [{"step": "test_scale", "factor": 2.0}]
    with pytest.raises(RecipeError) as error:
        validate_recipe([{"step": "test_scale", "factor": 9}])
    assert (error.value.field, error.value.message) == ("recipe.0.factor", "must be from 0.5 to 4")
    recipe = [{"step": "test_scale"}, {"step": "quantize", "scheme": "int8_weight_only"}]
    assert (describe(validate_recipe(recipe[:1])), family(validate_recipe(recipe[:1]))) == ("scale x2", "test_scale")
    assert (describe(validate_recipe(recipe)), family(validate_recipe(recipe))) == ("scale x2 → int8", "pipeline")
    logs = []
    result = _compress(recipe, log=logs.append)
    assert result.transforms == [
        {"kind": "test_scaled", "factor": 2.0},
        {"kind": "quantize", "scheme": "int8_weight_only"},
    ]
    assert logs[0] == "step 1 (test_scale): logits times 2"
    x = torch.randn(4, 12)
    with torch.no_grad():
        assert torch.allclose(result.module(x), 2 * _mlp()(x), atol=0.1)
        assert torch.equal(_rebuilt(tmp_path, result)(x), result.module(x))


def test_the_stored_transform_kinds_keep_their_rebuild_phases():
    phases = {kind: TRANSFORMS[kind].phase for kind in ("prune", "resize", "low_rank", "quantize", "distill")}
    assert phases == {
        "prune": "weights",
        "resize": "structure",
        "low_rank": "structure",
        "quantize": "weights",
        "distill": "weights",
    }


def test_a_step_cannot_take_over_a_transform_kind_that_versions_record():
    before = TRANSFORMS["quantize"]
    impostor = StepKind(
        name="test_impostor",
        params=(),
        apply=lambda module, step, run: module,
        describe=lambda step: "impostor",
        family="test_impostor",
        rebuilds=(Rebuild("quantize", "weights", lambda module, transform, weights: module),),
    )
    with pytest.raises(ValueError, match="already registered"):
        register_step(impostor)
    assert TRANSFORMS["quantize"] is before
    assert "test_impostor" not in STEP_KINDS


@pytest.mark.parametrize(
    ("recipe", "name", "method"),
    [
        ([{"step": "prune", "sparsity": 0.9, "rounds": 3}], "prune 90% (3 rounds)", "prune"),
        ([{"step": "prune", "sparsity": 0.5}, {"step": "finetune", "epochs": 2}], "prune 50% → fine-tune 2", "prune"),
        ([{"step": "structured_prune", "ratio": 0.5}], "structured 50%", "structured_prune"),
        ([{"step": "low_rank", "rank_ratio": 0.25}], "low-rank 25%", "low_rank"),
        ([{"step": "low_rank", "energy": 0.9}], "low-rank 90% energy", "low_rank"),
        ([{"step": "distill", "student": STUDENT}], "distill to mlp", "distill"),
        ([{"step": "finetune", "epochs": 2}], "fine-tune 2", "pipeline"),
        ([{"step": "quantize", "scheme": "int8_weight_only"}], "int8", "quantize"),
        ([{"step": "quantize", "scheme": "int8_dynamic"}], "int8 dynamic", "quantize"),
        ([{"step": "quantize", "scheme": "fp16"}], "fp16", "quantize"),
        (
            [{"step": "low_rank", "rank_ratio": 0.5}, {"step": "quantize", "scheme": "bf16"}],
            "low-rank 50% → bf16",
            "pipeline",
        ),
    ],
)
def test_each_step_kind_names_itself_and_its_family(recipe, name, method):
    assert describe(validate_recipe(recipe)) == name
    assert family(validate_recipe(recipe)) == method


def test_validation_fills_in_each_steps_defaults():
    recipe = validate_recipe(
        [
            {"step": "prune", "sparsity": 0.5},
            {"step": "distill", "student": STUDENT},
            {"step": "low_rank", "energy": 0.9, "finetune_epochs": 2.0},
        ]
    )
    assert recipe == [
        {"step": "prune", "sparsity": 0.5, "rounds": 1, "scope": "global"},
        {
            "step": "distill",
            "student": {**STUDENT, "dropout": 0.0},
            "temperature": 4.0,
            "alpha": 0.7,
            "label_fraction": 1.0,
        },
        {"step": "low_rank", "energy": 0.9, "finetune_epochs": 2},
    ]


@pytest.mark.parametrize(
    ("recipe", "field", "message"),
    [
        (
            [{"step": "nope"}],
            "recipe.0.step",
            "each step needs a 'step' among prune, structured_prune, low_rank, distill, finetune, quantize",
        ),
        ([{"step": "prune"}], "recipe.0.sparsity", "is required"),
        ([{"step": "prune", "sparsity": 0.5, "rounds": True}], "recipe.0.rounds", "must be an integer; got True"),
        ([{"step": "prune", "sparsity": 0.5, "scope": "all"}], "recipe.0.scope", "must be one of global, layer"),
        (
            [{"step": "structured_prune", "ratio": 0.5, "sparsity": 0.5}],
            "recipe.0.sparsity",
            "not a parameter of structured_prune",
        ),
        (
            [{"step": "low_rank", "rank_ratio": 0.5, "energy": 0.9}],
            "recipe.0.rank_ratio",
            "give rank_ratio or energy (one of the two)",
        ),
        (
            [{"step": "distill", "student": [8]}],
            "recipe.0.student",
            'must be an architecture spec such as {"family": "mlp", "hidden_sizes": [32]}',
        ),
        (
            [{"step": "quantize", "scheme": "int4"}],
            "recipe.0.scheme",
            "must be one of int8_weight_only, int8_dynamic, fp16, bf16",
        ),
        (
            [{"step": "quantize", "scheme": "fp16"}, {"step": "finetune", "epochs": 1}],
            "recipe.0.step",
            "quantize can only be the last step, once",
        ),
        ([{"step": "distill", "student": STUDENT}] * 2, "recipe", "distill at most once"),
    ],
)
def test_recipe_errors_name_the_field_at_fault(recipe, field, message):
    with pytest.raises(RecipeError) as error:
        validate_recipe(recipe)
    assert (error.value.field, error.value.message) == (field, message)


def test_each_step_counts_its_own_training_epochs():
    recipe = validate_recipe(
        [
            {"step": "prune", "sparsity": 0.5},
            {"step": "structured_prune", "ratio": 0.5, "finetune_epochs": 1},
            {"step": "distill", "student": STUDENT, "epochs": 7},
            {"step": "finetune", "epochs": 2},
            {"step": "quantize", "scheme": "fp16"},
        ]
    )
    assert training_epochs(recipe, FinetuneSettings(epochs=3)) == 3 + 1 + 7 + 2 + 0


def test_gradual_pruning_shares_its_epochs_among_the_rounds_on_one_progress_bar():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(90, 12)).astype(np.float32)
    labels = (features[:, 0] > 0).astype(np.int64)
    scale = {"kind": "scale", "factor": 1.0}
    splits = (
        VersionSplit(features, labels, np.arange(60), scale),
        VersionSplit(features, labels, np.arange(60, 90), scale),
    )
    reports = []
    _compress(
        [{"step": "prune", "sparsity": 0.8, "rounds": 3, "finetune_epochs": 4}],
        splits=splits,
        report=lambda fraction, message: reports.append((fraction, message)),
    )
    assert [fraction for fraction, message in reports if message == ""] == [0.5, 0.75, 1.0]  # rounds of 2, 1, 1
    messages = list(dict.fromkeys(message for _, message in reports if message))
    assert messages == [f"step 1 (prune): fine-tuning at {target}" for target in ("56%", "77%", "80%")]


def test_sweeps_take_their_ranges_from_the_step_table():
    assert parse_numbers("0.5, 0.9", "sparsities", rule=step_param("prune", "sparsity")) == [0.5, 0.9]
    with pytest.raises(SweepError) as error:
        parse_numbers("0.999", "sparsities", rule=step_param("prune", "sparsity"))
    assert error.value.message == "0.999 is outside 0.01..0.995"
    with pytest.raises(SweepError, match=r"outside 0\.05\.\.0\.95"):
        parse_numbers("0.01", "ratios", rule=step_param("structured_prune", "ratio"))
    assert parse_numbers("0.5", "ranks", low=0.01, high=1.0) == [0.5]  # the explicit range still works
