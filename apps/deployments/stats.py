"""Request statistics of deployments: counts, errors and latency percentiles from histogram buckets.

A predict request adds one to its (deployment, minute, latency bucket) in this process's
buffer; at most every LEPTON_STATS_FLUSH_SECONDS (and when the process exits) the buffer is
added to the rows with one F() update per row touched, so concurrent requests do not queue on
the same row's lock (or on SQLite's one writer) once each. A process killed outright loses at
most that interval's counts. Buckets grow by 2^(1/8) (about
9 %) from 0.05 ms, so a percentile read back from them is within about 5 % of the truth;
any window's percentiles come from adding its buckets up.
"""

import atexit
import contextlib
import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from apps.core.charts import LAYOUT, figure_json
from apps.deployments.models import RequestBucket

SMALLEST_MS = 0.05
GROWTH = 2 ** (1 / 8)
LAST_BUCKET = 200  # about 2.3 minutes; anything slower lands here


def bucket_index(latency_ms: float) -> int:
    if latency_ms <= SMALLEST_MS:
        return 0
    return min(LAST_BUCKET, int(math.log(latency_ms / SMALLEST_MS, GROWTH)))


def bucket_value(index: int) -> float:
    """The representative latency of a bucket: the geometric middle of its bounds."""
    return SMALLEST_MS * GROWTH ** (index + 0.5)


def percentile(counts: dict[int, int], q: float) -> float | None:
    """The q-quantile (0..1) of a histogram {bucket: count}, by nearest rank."""
    total = sum(counts.values())
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= rank:
            return bucket_value(index)
    return bucket_value(max(counts))


_pending: dict[tuple[int, datetime, int], list] = {}  # key -> [requests, errors, latency_ms_total]
_pending_lock = threading.Lock()
_last_flush = [time.monotonic()]


def record(deployment_id: int, latency_ms: float, *, error: bool) -> None:
    """Count one predict request (outside any transaction of the caller's); written out by `flush`."""
    minute = timezone.now().replace(second=0, microsecond=0)
    key = (deployment_id, minute, bucket_index(latency_ms))
    with _pending_lock:
        counts = _pending.setdefault(key, [0, 0, 0.0])
        counts[0] += 1
        counts[1] += int(error)
        counts[2] += latency_ms
        due = time.monotonic() - _last_flush[0] >= settings.LEPTON_STATS_FLUSH_SECONDS
        if not due:
            _start_flusher()
    if due:
        flush()


def flush() -> None:
    """Add this process's buffered counts to their rows (the buffer is taken first: no count is added twice)."""
    with _pending_lock:
        taken = dict(_pending)
        _pending.clear()
        _last_flush[0] = time.monotonic()
    for (deployment_id, minute, bucket), (requests, errors, latency) in taken.items():
        key = {"deployment_id": deployment_id, "minute": minute, "bucket": bucket}
        changes = {
            "requests": F("requests") + requests,
            "errors": F("errors") + errors,
            "latency_ms_total": F("latency_ms_total") + latency,
        }
        if RequestBucket.objects.filter(**key).update(**changes):
            continue
        try:
            with transaction.atomic():
                RequestBucket.objects.create(**key, requests=requests, errors=errors, latency_ms_total=latency)
        except IntegrityError:  # another process created this minute's row first
            RequestBucket.objects.filter(**key).update(**changes)


def _flush_at_exit() -> None:
    with contextlib.suppress(Exception):  # the database may be gone at exit; these are statistics
        flush()


def _flush_in_the_background() -> None:
    """Counts buffered after the last request still reach their rows within the interval."""
    from django.db import connection

    while True:
        time.sleep(max(settings.LEPTON_STATS_FLUSH_SECONDS, 0.1))
        if _pending:
            with contextlib.suppress(Exception):  # a database blip: the next round tries again
                flush()
            connection.close()  # this thread's own connection, not held between rounds


def _start_flusher() -> None:
    if not _flusher:
        thread = threading.Thread(target=_flush_in_the_background, name="stats-flush", daemon=True)
        _flusher.append(thread)
        thread.start()


_flusher: list[threading.Thread] = []
atexit.register(_flush_at_exit)


def prune(before: datetime) -> int:
    """Delete the request rows of minutes before `before`; returns how many rows went."""
    deleted, _ = RequestBucket.objects.filter(minute__lt=before).delete()
    return deleted


@dataclass
class Summary:
    """Requests of a window: counts, mean and percentiles in milliseconds."""

    requests: int = 0
    errors: int = 0
    mean_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "mean_ms": self.mean_ms,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
        }


def summarize(rows) -> Summary:
    """One Summary from rows with bucket, requests, errors and latency_ms_total."""
    counts: dict[int, int] = defaultdict(int)
    errors = 0
    total_ms = 0.0
    for row in rows:
        counts[row["bucket"]] += row["requests"]
        errors += row["errors"]
        total_ms += row["latency_ms_total"]
    requests = sum(counts.values())
    return Summary(
        requests=requests,
        errors=errors,
        mean_ms=total_ms / requests if requests else None,
        p50_ms=percentile(counts, 0.50),
        p95_ms=percentile(counts, 0.95),
        p99_ms=percentile(counts, 0.99),
    )


def totals(deployment_ids: list[int], *, since: datetime) -> dict[int, Summary]:
    """Summary per deployment since a time: one query for any number of deployments."""
    rows = (
        RequestBucket.objects.filter(deployment_id__in=deployment_ids, minute__gte=since)
        .values("deployment_id", "bucket")
        .annotate(requests=Sum("requests"), errors=Sum("errors"), latency_ms_total=Sum("latency_ms_total"))
        .order_by()
    )
    grouped = defaultdict(list)
    for row in rows:
        grouped[row["deployment_id"]].append(row)
    return {pk: summarize(grouped.get(pk, [])) for pk in deployment_ids}


def window(deployment_id: int, *, minutes: int) -> tuple[list[dict], Summary]:
    """The last `minutes` minutes: a Summary dict per minute that had requests (oldest first), and the total."""
    since = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    rows = list(
        RequestBucket.objects.filter(deployment_id=deployment_id, minute__gte=since).values(
            "minute", "bucket", "requests", "errors", "latency_ms_total"
        )
    )
    grouped = defaultdict(list)
    for row in rows:
        grouped[row["minute"]].append(row)
    series = [{"minute": minute, **summarize(grouped[minute]).as_dict()} for minute in sorted(grouped)]
    return series, summarize(rows)


def latency_chart(series: list[dict], *, minutes: int) -> dict:
    """Requests and errors per minute (bars, left axis) under p50 and p95 latency (lines, right axis),
    over the whole window of `minutes` (quiet minutes stay empty)."""
    import plotly.graph_objects as go

    x = [row["minute"].isoformat() for row in series]
    end = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    figure = go.Figure()
    bar = {"x": x, "width": 50_000, "offset": 5_000}  # a minute's bar fills its minute (milliseconds on a date axis)
    figure.add_trace(go.Bar(**bar, y=[row["requests"] for row in series], name="requests", marker_color="#c7d2fe"))
    figure.add_trace(go.Bar(**bar, y=[row["errors"] for row in series], name="errors", marker_color="#fca5a5"))
    for name in ("p50", "p95"):
        values = [row[f"{name}_ms"] for row in series]
        figure.add_trace(go.Scatter(x=x, y=values, name=f"{name} latency", mode="lines+markers", yaxis="y2"))
    figure.update_layout(
        **LAYOUT,
        title="Requests and latency per minute",
        barmode="overlay",
        xaxis={"type": "date", "range": [(end - timedelta(minutes=minutes)).isoformat(), end.isoformat()]},
        yaxis={"title": "requests", "rangemode": "tozero"},
        yaxis2={"title": "ms", "overlaying": "y", "side": "right", "rangemode": "tozero", "showgrid": False},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure_json(figure)
