"""Handing work to the django-q2 workers, only once the database says it exists."""

from django.db import transaction
from django_q.tasks import async_task


def enqueue_on_commit(func: str, *args, group: str = "") -> None:
    """Queue `func(*args)` when the surrounding transaction commits (at once outside one).

    Queueing inside the transaction would let a fast worker look for a row that is not
    committed yet, or run work for a transaction that then rolls back.
    """
    transaction.on_commit(lambda: async_task(func, *args, group=group or None))
