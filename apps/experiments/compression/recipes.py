"""Compression recipes: an ordered list of steps, each with validated parameters (plain Python).

    [{"step": "structured_prune", "ratio": 0.5}, {"step": "quantize", "scheme": "int8_weight_only"}]

Steps: prune (unstructured magnitude), structured_prune (channels), low_rank (SVD),
distill (a smaller student), finetune, quantize (last, at most once). Pruning, low-rank and
distillation are followed by fine-tuning (`finetune_epochs`, default from the experiment).
"""

from dataclasses import dataclass

from apps.experiments.compression.quantize import SCHEMES
from apps.registry.architectures import SpecError, validate_spec


class RecipeError(ValueError):
    def __init__(self, message: str, field: str):
        super().__init__(f"{field}: {message}")
        self.message, self.field = message, field


@dataclass(frozen=True)
class Number:
    low: float
    high: float
    integer: bool = False
    default: float | None = None


STEPS: dict[str, dict] = {
    "prune": {
        "sparsity": Number(0.01, 0.995),
        "rounds": Number(1, 20, True, 1),
        "finetune_epochs": Number(0, 100, True),
        "scope": ("global", "layer"),
    },
    "structured_prune": {"ratio": Number(0.05, 0.95), "finetune_epochs": Number(0, 100, True)},
    "low_rank": {
        "rank_ratio": Number(0.01, 1.0),
        "energy": Number(0.5, 0.9999),
        "finetune_epochs": Number(0, 100, True),
    },
    "distill": {
        "student": dict,
        "temperature": Number(1, 20, False, 4.0),
        "alpha": Number(0, 1, False, 0.7),
        "epochs": Number(1, 1000, True),
        "label_fraction": Number(0.01, 1.0, False, 1.0),
    },
    "finetune": {"epochs": Number(1, 1000, True)},
    "quantize": {"scheme": SCHEMES},
}
REQUIRED = {
    "prune": {"sparsity"},
    "structured_prune": {"ratio"},
    "quantize": {"scheme"},
    "distill": {"student"},
    "finetune": {"epochs"},
}


def _value(step: dict, name: str, rule, where: str):
    value = step[name]
    if rule is dict:
        if not isinstance(value, dict) or "family" not in value:
            raise RecipeError('must be an architecture spec such as {"family": "mlp", "hidden_sizes": [32]}', where)
        try:
            return validate_spec(value)  # the student is built from it: a family of the catalog, sane sizes
        except SpecError as error:
            raise RecipeError(str(error).split(": ", 1)[-1], f"{where}.{error.field}") from None
    if isinstance(rule, tuple):
        if value not in rule:
            raise RecipeError(f"must be one of {', '.join(rule)}", where)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or (rule.integer and float(value) % 1):
        raise RecipeError(f"must be {'an integer' if rule.integer else 'a number'}; got {value!r}", where)
    if not rule.low <= value <= rule.high:
        raise RecipeError(f"must be from {rule.low} to {rule.high}", where)
    return int(value) if rule.integer else float(value)


def _check_step(index: int, step) -> dict:
    where = f"recipe.{index}"
    if not isinstance(step, dict) or not isinstance(step.get("step"), str) or step["step"] not in STEPS:
        raise RecipeError(f"each step needs a 'step' among {', '.join(STEPS)}", f"{where}.step")
    kind, rules = step["step"], STEPS[step["step"]]
    unknown = sorted(set(step) - set(rules) - {"step"})
    if unknown:
        raise RecipeError(f"not a parameter of {kind}", f"{where}.{unknown[0]}")
    missing = sorted(REQUIRED.get(kind, set()) - set(step))
    if missing:
        raise RecipeError("is required", f"{where}.{missing[0]}")
    if kind == "low_rank" and ("rank_ratio" in step) == ("energy" in step):
        raise RecipeError("give rank_ratio or energy (one of the two)", f"{where}.rank_ratio")
    clean = {"step": kind}
    for name, rule in rules.items():
        if name in step:
            clean[name] = _value(step, name, rule, f"{where}.{name}")
        elif isinstance(rule, Number) and rule.default is not None:
            clean[name] = rule.default
    if kind == "prune":
        clean.setdefault("scope", "global")
    return clean


def validate_recipe(recipe) -> list[dict]:
    if not isinstance(recipe, list) or not recipe:
        raise RecipeError("must be a non-empty list of steps", "recipe")
    if len(recipe) > 8:
        raise RecipeError("has more than 8 steps", "recipe")
    steps = [_check_step(index, step) for index, step in enumerate(recipe)]
    kinds = [step["step"] for step in steps]
    if "quantize" in kinds and (kinds.count("quantize") > 1 or kinds[-1] != "quantize"):
        raise RecipeError("quantize can only be the last step, once", f"recipe.{kinds.index('quantize')}.step")
    if kinds.count("distill") > 1:
        raise RecipeError("distill at most once", "recipe")
    return steps


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.4g}%"


def describe(recipe: list[dict]) -> str:
    """A short human name: "structured 50% → int8" and so on."""
    parts = []
    for step in recipe:
        kind = step["step"]
        if kind == "prune":
            parts.append(
                f"prune {_percent(step['sparsity'])}"
                + (f" ({step['rounds']} rounds)" if step.get("rounds", 1) > 1 else "")
            )
        elif kind == "structured_prune":
            parts.append(f"structured {_percent(step['ratio'])}")
        elif kind == "low_rank":
            parts.append(
                f"low-rank {_percent(step['rank_ratio'])}"
                if "rank_ratio" in step
                else f"low-rank {_percent(step['energy'])} energy"
            )
        elif kind == "distill":
            parts.append(f"distill to {step['student'].get('family')}")
        elif kind == "finetune":
            parts.append(f"fine-tune {step['epochs']}")
        else:
            parts.append(
                {"int8_weight_only": "int8", "int8_dynamic": "int8 dynamic"}.get(step["scheme"], step["scheme"])
            )
    return " → ".join(parts)


def family(recipe: list[dict]) -> str:
    """The method family a recipe belongs to (for charts): its single step, or 'pipeline'."""
    kinds = [step["step"] for step in recipe if step["step"] != "finetune"]
    if len(kinds) == 1:
        return "quantize" if kinds[0] == "quantize" else kinds[0]
    return "pipeline"
