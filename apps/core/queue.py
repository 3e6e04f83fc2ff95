"""Handing work to the django-q2 workers, only once the database says it exists."""

from django.db import transaction
from django_q.tasks import async_task


def enqueue(func: str, *args, group: str = "", queue: str | None = None) -> None:
    """Queue `func(*args)` now. `queue` names a node's queue (jobs); without it the task goes to
    the general queue every agent serves."""
    options = {"group": group or None}
    if queue:
        options["cluster"] = queue  # django-q2: the cluster (queue) whose workers take it
    async_task(func, *args, **options)


def enqueue_on_commit(func: str, *args, group: str = "", queue: str | None = None) -> None:
    """Queue `func(*args)` when the surrounding transaction commits (at once outside one).

    Queueing inside the transaction would let a fast worker look for a row that is not
    committed yet, or run work for a transaction that then rolls back.
    """
    transaction.on_commit(lambda: enqueue(func, *args, group=group, queue=queue))
