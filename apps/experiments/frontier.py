"""The Pareto frontier and the recommended point (plain Python).

A point is on the frontier when no other point is at least as small (or fast) and at least
as accurate, and strictly better in one of the two.
"""

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    key: int  # the trial's number
    cost: float  # bytes or milliseconds: lower is better
    accuracy: float  # higher is better


def pareto_frontier(points: Sequence[Point]) -> list[Point]:
    """The non-dominated points, cheapest first (accuracy rises along them)."""
    frontier: list[Point] = []
    for point in sorted(points, key=lambda p: (p.cost, -p.accuracy, p.key)):
        if not frontier or point.accuracy > frontier[-1].accuracy:
            frontier.append(point)
    return frontier


def recommended(points: Sequence[Point], *, minimum_accuracy: float) -> Point | None:
    """The cheapest point within the target; ties go to the more accurate, then the earlier trial."""
    eligible = [point for point in points if point.accuracy >= minimum_accuracy]
    return min(eligible, key=lambda p: (p.cost, -p.accuracy, p.key), default=None)
