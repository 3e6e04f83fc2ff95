"""Handing work to the django-q2 workers, only once the database says it exists."""

from django.db import transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.humanhash import uuid
from django_q.models import OrmQ
from django_q.signals import pre_enqueue
from django_q.signing import SignedPackage
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


def enqueue_many(func: str, calls: list[tuple[str | None, tuple]], *, group: str = "") -> None:
    """Queue `func(*args)` on `queue` for each (queue, args) of `calls`, as `enqueue` would one by one.

    With the database as the broker (django-q2's ORM broker) the tasks go in as one INSERT: a
    placement pass hands 800 attempts over in one statement instead of 800 commits. The task
    packages are the ones `async_task` builds (id, name, func, args, options, signed). Other
    brokers, and sync mode (the tests'), take them one by one.
    """
    if Conf.SYNC or not isinstance(get_broker(), ORM):
        for queue, args in calls:
            enqueue(func, *args, group=group, queue=queue)
        return
    now = timezone.now()
    rows = []
    for queue, args in calls:
        name, task_id = uuid()
        task = {"id": task_id, "name": name, "func": func, "args": tuple(args), "group": group or None}
        if queue:
            task["cluster"] = queue
        if Conf.CACHED:
            task["cached"] = Conf.CACHED
        if Conf.ACK_FAILURES:
            task["ack_failure"] = Conf.ACK_FAILURES
        task.update(kwargs={}, started=now)
        pre_enqueue.send(sender="django_q", task=task)
        rows.append(OrmQ(key=queue or Conf.CLUSTER_NAME, payload=SignedPackage.dumps(task), lock=now))
    OrmQ.objects.using(Conf.ORM).bulk_create(rows, batch_size=500)
