"""Query counting for "no query per row" tests."""

from django.db import connection
from django.test.utils import CaptureQueriesContext


def count_queries(request) -> int:
    """How many queries `request()` runs."""
    with CaptureQueriesContext(connection) as context:
        request()
    return len(context.captured_queries)


def assert_queries_constant(request, add_rows, *, at_most: int) -> None:
    """The same number of queries (and at most `at_most`) before and after `add_rows()`.

    Start with at least one row: an empty page skips the query that fetches rows.
    """
    request()  # warm-up: once-a-minute writes, lazy caches
    before = count_queries(request)
    add_rows()
    after = count_queries(request)
    assert before == after, f"queries grew with rows: {before} -> {after}"
    assert after <= at_most, f"{after} queries, expected at most {at_most}"
