"""Compression recipes: an ordered list of steps, each with validated parameters (plain Python).

    [{"step": "structured_prune", "ratio": 0.5}, {"step": "quantize", "scheme": "int8_weight_only"}]

Steps: prune (unstructured magnitude), structured_prune (channels), low_rank (SVD),
distill (a smaller student), finetune, quantize (last, at most once). Pruning, low-rank and
distillation are followed by fine-tuning (`finetune_epochs`, default from the experiment).
What each step accepts, costs and is called lives in its entry of the step table
(`steps.py`); this module holds the rules across steps and the public names callers use.
"""

from apps.experiments.compression.params import RecipeError  # raised here, and callers catch it from here
from apps.experiments.compression.steps import STEP_KINDS

MAX_STEPS = 8


def _check_step(index: int, step) -> dict:
    where = f"recipe.{index}"
    if not isinstance(step, dict) or not isinstance(step.get("step"), str) or step["step"] not in STEP_KINDS:
        raise RecipeError(f"each step needs a 'step' among {', '.join(STEP_KINDS)}", f"{where}.step")
    return STEP_KINDS[step["step"]].clean(step, where)


def validate_recipe(recipe) -> list[dict]:
    """The recipe with every step checked and its defaults filled in; RecipeError names the field at fault."""
    if not isinstance(recipe, list) or not recipe:
        raise RecipeError("must be a non-empty list of steps", "recipe")
    if len(recipe) > MAX_STEPS:
        raise RecipeError(f"has more than {MAX_STEPS} steps", "recipe")
    steps = [_check_step(index, step) for index, step in enumerate(recipe)]
    kinds = [step["step"] for step in steps]
    # a quantized module is not trained again, and two quantizations would compound their error
    if "quantize" in kinds and (kinds.count("quantize") > 1 or kinds[-1] != "quantize"):
        raise RecipeError("quantize can only be the last step, once", f"recipe.{kinds.index('quantize')}.step")
    if kinds.count("distill") > 1:
        raise RecipeError("distill at most once", "recipe")
    return steps


def describe(recipe: list[dict]) -> str:
    """A short human name: "structured 50% → int8" and so on."""
    return " → ".join(STEP_KINDS[step["step"]].describe(step) for step in recipe)


def family(recipe: list[dict]) -> str:
    """The method family a recipe belongs to (for charts): its single step's, or 'pipeline'."""
    families = [STEP_KINDS[step["step"]].family for step in recipe]
    families = [name for name in families if name is not None]  # fine-tuning alone changes no method
    return families[0] if len(families) == 1 else "pipeline"
