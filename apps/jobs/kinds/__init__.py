"""The job kinds' registry: each kind says how to validate its spec and how to run it.

The engine (services, runner, scheduler) only looks kinds up here; it imports no kind's
code. Kinds register from their app's `ready()`.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class KindHandler:
    name: str
    validate: Callable  # (spec: dict, *, team, actor) -> normalized spec; raises ApplicationError
    run: Callable  # (context: JobContext) -> result links (dict)
    describe: Callable = lambda spec: ""  # a one-line summary for lists


KINDS: dict[str, KindHandler] = {}


def register_kind(name: str, *, validate: Callable, run: Callable, describe: Callable | None = None) -> None:
    KINDS[name] = KindHandler(name, validate, run, describe or (lambda spec: ""))


def kind_handler(name: str) -> KindHandler:
    from apps.core.errors import ApplicationError

    if name not in KINDS:
        available = ", ".join(sorted(KINDS)) or "none"
        raise ApplicationError(
            f"kind: '{name}' is not a job kind here; available: {available}.", fields={"kind": ["Unknown kind."]}
        )
    return KINDS[name]
