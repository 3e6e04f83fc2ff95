"""Which recipes an experiment tries: the search space, the full grid, and the accuracy-aware auto search.

Plain Python. The space is a set of ladders, one per method family, each an ordered list of
recipes of growing strength (sparsity, channel ratio, rank), and for the families that
combine, the same points followed by int8 (a pipeline: prune, then quantize).

- grid: every recipe of the space (or the user's own list).
- auto: within each ladder, accuracy falls as strength grows, so the strongest recipe
  within the target is found by bisection (log2 n trials instead of n); a ladder probes
  its strongest point first where the weaker ones are only worth having if it fails
  (quantization). Once a family's best single point is known, its pipeline ladder is
  searched below that point, strongest first (int8 rarely costs accuracy, so one trial
  usually settles it). Ladders run side by side, so trials run in parallel.
`next_recipes` is stateless: it plans from the outcomes so far (True: within target,
False: not, None: still running), so it can be re-run at any time after a crash.
"""

import hashlib
import json
from dataclasses import dataclass, field

INT8 = {"step": "quantize", "scheme": "int8_weight_only"}


@dataclass(frozen=True)
class Ladder:
    family: str
    points: list[list[dict]]  # recipes, weakest first
    probe: str = "bisect"  # "bisect", "top" (strongest first) or "all"
    pipelines: list[list[dict]] = field(default_factory=list)


def recipe_key(recipe: list[dict]) -> str:
    """A recipe's identity: the sha256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def default_space(objective: str = "size") -> list[Ladder]:
    """The families and strengths Lepton searches (finetune epochs come from the experiment)."""
    schemes = (
        ["fp16", "int8_weight_only"] if objective == "size" else ["bf16", "fp16", "int8_dynamic", "int8_weight_only"]
    )
    quantize = Ladder(
        "quantize",
        [[{"step": "quantize", "scheme": s}] for s in schemes],
        probe="top" if objective == "size" else "all",
    )
    prune = [
        [{"step": "prune", "sparsity": s, "rounds": 3, "scope": "global"}] for s in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
    ]
    structured = [[{"step": "structured_prune", "ratio": r}] for r in (0.25, 0.375, 0.5, 0.625, 0.75, 0.875)]
    low_rank = [[{"step": "low_rank", "rank_ratio": r}] for r in (0.5, 0.35, 0.25, 0.125, 0.0625)]
    return [
        quantize,
        *(
            Ladder(name, points, pipelines=[[*point, INT8] for point in points])
            for name, points in (("prune", prune), ("structured_prune", structured), ("low_rank", low_rank))
        ),
    ]


def grid_recipes(space: list[Ladder]) -> list[list[dict]]:
    """Every recipe of the space: the full grid the auto search is measured against."""
    return [recipe for ladder in space for recipe in (*ladder.points, *ladder.pipelines)]


def _ladder_probe(recipes: list[list[dict]], outcomes: dict, probe: str) -> tuple[list[list[dict]], int | None]:
    """(recipes to try next, index of the best within target once the ladder is settled, else None).

    `outcomes` maps recipe keys to True / False / None (running); absent means not tried.
    """
    keys = [recipe_key(recipe) for recipe in recipes]
    if any(key in outcomes and outcomes[key] is None for key in keys):
        return [], None
    if probe == "all":
        untried = [recipe for recipe, key in zip(recipes, keys, strict=True) if key not in outcomes]
        if untried:
            return untried, None
        passed = [index for index, key in enumerate(keys) if outcomes[key]]
        return [], max(passed, default=-1)
    known = [outcomes.get(key, "untried") for key in keys]
    failed = [index for index, outcome in enumerate(known) if outcome is False]
    high = min(failed, default=len(keys))
    passed = [index for index, outcome in enumerate(known) if outcome is True and index < high]
    low = max(passed, default=-1)
    if high - low <= 1:
        return [], low
    tried_any = any(outcome != "untried" for outcome in known)
    index = high - 1 if probe == "top" and not tried_any else (low + high) // 2
    return [recipes[index]], None


def next_recipes(space: list[Ladder], outcomes: dict[str, bool | None], budget_left: int) -> list[list[dict]]:
    """The recipes to start now (at most `budget_left`); an empty list with nothing running means done."""
    proposals = []
    for ladder in space:
        found, best = _ladder_probe(ladder.points, outcomes, ladder.probe)
        proposals += found
        if best is not None and best >= 0 and ladder.pipelines:
            found, _ = _ladder_probe(ladder.pipelines[: best + 1], outcomes, "top")
            proposals += found
    return proposals[: max(budget_left, 0)]
