"""Grid recipes from simple sweeps (what the page's form asks for instead of JSON). Plain Python.

A swept value must be one the recipe step accepts: pass the step's parameter rule, read
from the step table, so the range is declared once (`rule=step_param("prune", "sparsity")`).
"""

from apps.experiments.compression.params import Number

INT8 = {"step": "quantize", "scheme": "int8_weight_only"}


class SweepError(ValueError):
    def __init__(self, message: str, field: str):
        super().__init__(f"{field}: {message}")
        self.message, self.field = message, field


def parse_numbers(
    text: str, field: str, *, rule: Number | None = None, low: float | None = None, high: float | None = None
) -> list[float]:
    """ "0.5, 0.7 0.9" -> [0.5, 0.7, 0.9]; each must lie in the rule's range (or in [low, high])."""
    if rule is not None:
        low, high = rule.low, rule.high
    if low is None or high is None:
        raise TypeError("parse_numbers needs a rule or both low and high")
    values = []
    for part in (text or "").replace(",", " ").split():
        try:
            value = float(part)
        except ValueError:
            raise SweepError(f"'{part}' is not a number", field) from None
        if not low <= value <= high:
            raise SweepError(f"{value:g} is outside {low:g}..{high:g}", field)
        values.append(value)
    return sorted(set(values))


def parse_students(text: str, field: str) -> list[list[int]]:
    """ "64; 32, 16" -> [[64], [32, 16]]: hidden layer sizes of MLP students, one per ';'."""
    students = []
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        try:
            sizes = [int(size) for size in part.replace(",", " ").split()]
        except ValueError:
            raise SweepError(f"'{part.strip()}' is not a list of layer sizes", field) from None
        if not sizes or any(not 1 <= size <= 65536 for size in sizes):
            raise SweepError(f"'{part.strip()}': layer sizes must be from 1 to 65536", field)
        students.append(sizes)
    return students


def grid_from_sweeps(
    *,
    schemes: list[str] = (),
    sparsities: list[float] = (),
    ratios: list[float] = (),
    ranks: list[float] = (),
    students: list[list[int]] = (),
    then_int8: bool = False,
    distill_epochs: int = 10,
) -> list[list[dict]]:
    """One recipe per point; with then_int8 each pruning, low-rank and distillation point is tried followed by int8."""
    singles = [
        *[[{"step": "prune", "sparsity": s, "rounds": 3}] for s in sparsities],
        *[[{"step": "structured_prune", "ratio": r}] for r in ratios],
        *[[{"step": "low_rank", "rank_ratio": r}] for r in ranks],
        *[
            [{"step": "distill", "student": {"family": "mlp", "hidden_sizes": sizes}, "epochs": distill_epochs}]
            for sizes in students
        ],
    ]
    recipes = [[{"step": "quantize", "scheme": scheme}] for scheme in schemes] + singles
    if then_int8:
        recipes += [[*recipe, INT8] for recipe in singles]
    return recipes
