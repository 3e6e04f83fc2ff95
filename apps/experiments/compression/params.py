"""The parameter rules a recipe step declares (plain Python): a number in a range, a choice, an architecture.

Each rule checks one value and says what is wrong with it in words, with the field at fault
("recipe.0.sparsity"), so the API, the form and the job report the same message. The step
table (`steps.py`) declares its parameters with these; the sweep parser reads their ranges.
"""

from dataclasses import dataclass

from apps.registry.architectures import SpecError, validate_spec


class RecipeError(ValueError):
    """A recipe that cannot run: `message` in words, `field` the path of the value at fault."""

    def __init__(self, message: str, field: str):
        super().__init__(f"{field}: {message}")
        self.message, self.field = message, field


@dataclass(frozen=True)
class Number:
    """A number from `low` to `high` (an integer when `integer`); `default` is filled in when left out."""

    name: str
    low: float
    high: float
    integer: bool = False
    default: float | None = None
    required: bool = False
    help: str = ""

    def clean(self, value, where: str) -> float | int:
        # bool is an int to Python, but `"rounds": true` is a mistake, not 1
        if isinstance(value, bool) or not isinstance(value, int | float) or (self.integer and float(value) % 1):
            raise RecipeError(f"must be {'an integer' if self.integer else 'a number'}; got {value!r}", where)
        if not self.low <= value <= self.high:
            raise RecipeError(f"must be from {self.low} to {self.high}", where)
        return int(value) if self.integer else float(value)


@dataclass(frozen=True)
class Choice:
    """One of a few names."""

    name: str
    choices: tuple[str, ...]
    default: str | None = None
    required: bool = False
    help: str = ""

    def clean(self, value, where: str) -> str:
        if value not in self.choices:
            raise RecipeError(f"must be one of {', '.join(self.choices)}", where)
        return value


@dataclass(frozen=True)
class Architecture:
    """An architecture spec of the catalog (a distillation student is built from it, so it is checked whole)."""

    name: str
    required: bool = False
    help: str = ""
    default = None  # a spec is never guessed

    def clean(self, value, where: str) -> dict:
        if not isinstance(value, dict) or "family" not in value:
            raise RecipeError('must be an architecture spec such as {"family": "mlp", "hidden_sizes": [32]}', where)
        try:
            return validate_spec(value)
        except SpecError as error:
            raise RecipeError(str(error).split(": ", 1)[-1], f"{where}.{error.field}") from None


Param = Number | Choice | Architecture
