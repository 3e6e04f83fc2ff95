"""Riding out a database blip in long-lived processes: close the broken connection, back off, try again.

A restarted or failed-over PostgreSQL (or `pg_terminate_backend`) ends every connection: the next
query raises OperationalError or InterfaceError, and so would every later one on that connection.
The writes a worker makes while it runs a job (and a node agent's heartbeat) are conditional
updates fenced by the attempt, safe to repeat, so after a reconnect they are simply tried again,
with exponential backoff (tenacity), for as long as the job's lease lasts
(LEPTON_JOB_STALE_SECONDS): past that the reaper treats the attempt as lost anyway.

Never retried inside a transaction the caller holds: that transaction is gone with its
connection, and only the caller can start it again.
"""

import contextlib
import logging

import tenacity
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError)  # what a lost connection (or a locked SQLite) raises


def _retryable(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT) and not connections[DEFAULT_DB_ALIAS].in_atomic_block


def _past_the_lease(state: tenacity.RetryCallState) -> bool:
    return state.seconds_since_start >= settings.LEPTON_JOB_STALE_SECONDS


def _reconnect(state: tenacity.RetryCallState) -> None:
    """Close this thread's broken connection: the next query opens a new one."""
    logger.warning(
        "database error in %s (try %s): %s; reconnecting",
        getattr(state.fn, "__qualname__", state.fn),
        state.attempt_number,
        state.outcome.exception(),
    )
    with contextlib.suppress(DatabaseError):
        connections[DEFAULT_DB_ALIAS].close()


retry_on_disconnect = tenacity.retry(
    retry=tenacity.retry_if_exception(_retryable),
    wait=tenacity.wait_exponential_jitter(initial=0.2, max=5),
    stop=_past_the_lease,
    before_sleep=_reconnect,
    reraise=True,  # the database error itself, not tenacity's RetryError, once the lease is spent
)
"""Decorator: call again after a transient database error, reconnecting first, within the lease."""
