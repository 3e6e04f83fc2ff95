"""The auto search: bisection per family, pipelines of the best, the budget; and the frontier."""

import pytest

from apps.experiments.frontier import Point, pareto_frontier, recommended
from apps.experiments.search import default_space, grid_recipes, next_recipes, recipe_key


def _run_search(space, feasible, budget=100):
    """Drive next_recipes to the end, answering each proposal with `feasible(recipe)`; returns the tried recipes."""
    outcomes, tried = {}, []
    while True:
        proposals = next_recipes(space, outcomes, budget - len(tried))
        if not proposals:
            return tried, outcomes
        for recipe in proposals:
            assert recipe_key(recipe) not in outcomes, "a recipe was proposed twice"
            outcomes[recipe_key(recipe)] = feasible(recipe)
            tried.append(recipe)


def _strength(recipe):
    step = recipe[0]
    return step.get("sparsity") or step.get("ratio") or (1 - step["rank_ratio"] if "rank_ratio" in step else 0)


@pytest.mark.parametrize(
    "limits",
    [
        {"prune": 0.9, "structured_prune": 0.5, "low_rank": 0.75, "int8_ok": True, "pipeline_ok": True},
        {"prune": 0.98, "structured_prune": 0.875, "low_rank": 0.9375, "int8_ok": True, "pipeline_ok": True},
        {"prune": 0.0, "structured_prune": 0.0, "low_rank": 0.0, "int8_ok": False, "pipeline_ok": False},
        {"prune": 0.8, "structured_prune": 0.625, "low_rank": 0.5, "int8_ok": True, "pipeline_ok": False},
    ],
)
def test_auto_finds_each_familys_strongest_point_within_target_with_at_most_half_the_grid(limits):
    """A monotone world: a point is within target up to a family's limit (what the grid would find)."""
    space = default_space("size")

    def feasible(recipe):
        kind = recipe[0]["step"]
        if kind == "quantize":
            return recipe[0]["scheme"] == "fp16" or limits["int8_ok"]
        within = _strength(recipe) <= limits[kind] + 1e-9
        return within and (len(recipe) == 1 or limits["pipeline_ok"])

    tried, outcomes = _run_search(space, feasible)
    grid = grid_recipes(space)
    grid_within = {recipe_key(r) for r in grid if feasible(r)}
    auto_within = {key for key, ok in outcomes.items() if ok}
    assert len(tried) <= len(grid) / 2
    for ladder in space:  # the strongest feasible single point of each family was tried
        best = [r for r in ladder.points if recipe_key(r) in grid_within]
        if best:
            assert recipe_key(best[-1]) in auto_within
        pipelines = [r for r in ladder.pipelines if recipe_key(r) in grid_within]
        if pipelines:
            assert recipe_key(pipelines[-1]) in auto_within


def test_auto_stops_at_the_budget():
    tried, _ = _run_search(default_space("size"), lambda recipe: True, budget=5)
    assert len(tried) == 5


def test_nothing_is_proposed_while_a_ladder_waits_for_its_running_trial():
    space = default_space("size")
    first = next_recipes(space, {}, 100)
    running = {recipe_key(recipe): None for recipe in first}
    assert next_recipes(space, running, 100) == []


def test_the_latency_objective_tries_every_quantization_scheme():
    space = default_space("latency")
    first = next_recipes(space, {}, 100)
    schemes = {recipe[0]["scheme"] for recipe in first if recipe[0]["step"] == "quantize"}
    assert schemes == {"bf16", "fp16", "int8_dynamic", "int8_weight_only"}


def test_the_frontier_keeps_only_points_nothing_beats_on_both_size_and_accuracy():
    points = [Point(0, 100, 0.95), Point(1, 25, 0.95), Point(2, 30, 0.90), Point(3, 10, 0.80), Point(4, 25, 0.94)]
    assert [p.key for p in pareto_frontier(points)] == [3, 1]
    assert recommended(points, minimum_accuracy=0.94).key == 1
    assert recommended(points, minimum_accuracy=0.96) is None
