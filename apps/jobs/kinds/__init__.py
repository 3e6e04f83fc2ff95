"""The job kinds' registry: each kind declares its spec, how to check its references and how to run it.

The engine (services, runner, scheduler) only looks kinds up here; it imports no kind's
code. Kinds register from their app's `ready()`. A kind's `params` is the one declaration of
its spec (types, ranges, defaults, help): the service checks with it, and the API serializer,
the forms and the published schema are derived from it (apps.core.params).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from apps.core.errors import ApplicationError
from apps.core.params import Params


class JobFailed(Exception):
    """Raised by a kind for a failure another attempt would not fix (bad input); the job fails at once."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class KindHandler:
    name: str
    params: Params  # the spec's declaration
    validate: Callable  # (clean spec, *, team, actor) -> spec with its references checked; raises ApplicationError
    run: Callable  # (context: JobContext) -> result links (dict)
    describe: Callable = lambda spec: ""  # a one-line summary for lists
    started_by: str = ""  # set for kinds only their own app starts (through apps.core.work): where from
    run_rank: Callable | None = None  # (context: RankContext) -> None: a node's share of a multi-node job

    def check(self, spec, *, team, actor) -> dict:
        """The spec checked against the declaration, then its references against the team."""
        return self.validate(self.params.clean(spec, prefix="spec."), team=team, actor=actor)

    @property
    def submittable(self) -> bool:
        """Whether anyone may submit it through the jobs API (else only its own app starts it)."""
        return not self.started_by

    @cached_property
    def spec_serializer(self):
        """The spec as a DRF serializer, derived from the declaration (for the API and its schema)."""
        return self.params.serializer(f"{self.name.title()}Spec")

    def describe_params(self) -> dict:
        """The kind as the API publishes it: its parameters with types, ranges, defaults and help."""
        return {
            "kind": self.name,
            "submittable": self.submittable,
            "started_by": self.started_by,
            "params": self.params.describe(),
        }


KINDS: dict[str, KindHandler] = {}


def register_kind(
    name: str,
    *,
    validate: Callable,
    run: Callable,
    params: Params | None = None,
    describe: Callable | None = None,
    started_by: str = "",
    run_rank: Callable | None = None,
) -> None:
    """Register (or, in tests, replace) a kind; without `params` its spec takes no parameters.

    Only a kind with `run_rank` (what the ranks 1.. of a multi-node job run) may span nodes.
    """
    KINDS[name] = KindHandler(
        name, params or Params(), validate, run, describe or (lambda spec: ""), started_by, run_rank
    )


def kind_handler(name: str) -> KindHandler:
    if name not in KINDS:
        available = ", ".join(sorted(KINDS)) or "none"
        raise ApplicationError(
            f"kind: '{name}' is not a job kind here; available: {available}.", fields={"kind": ["Unknown kind."]}
        )
    return KINDS[name]
