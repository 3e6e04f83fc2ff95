"""Placing queued jobs on nodes: fair across teams, never past a quota, never a GPU twice.

One pass places everything that fits now, in one transaction, in a number of queries that
grows with teams and nodes, never with queued jobs:

1. passes take turns (a transaction-scoped advisory lock on PostgreSQL; SQLite's write
   transactions already do), and the quota rows of the teams with queued work are locked, so
   two placers never both count the same headroom;
2. it loads once the placeable nodes with their free worker slots and free GPUs, the live
   usage of every team with queued work, and, per team and per kind of request (GPUs, pool,
   GPU model, memory), only the first jobs that could possibly run now (a window query);
3. it places in memory in fair order: the team holding least goes next, and takes its next job
   by priority, then age, so a team's 10,000 queued jobs never delay another team's job;
4. it locks the rows it chose (a job cancelled meanwhile is left out), writes every lease in
   one statement (the unique constraint on `GpuLease.gpu` still makes a double allocation
   impossible), moves the jobs to scheduled as their next attempt, notes why the others wait,
   and once committed hands each attempt to its node's queue and records that it reached the
   broker (`dispatched_at`): a placer that dies between its commit and the enqueue leaves that
   empty, and `jobs_dispatch_undelivered` sends the task within seconds.

Passes are asked for, not run inline: `jobs_request_pass` (on submit, attempt end, node join,
requeue) queues one coalescing task, so many requests in a moment make one pass.
"""

import heapq
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.db.models.expressions import Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from apps.accounts.models import Team, TeamQuota
from apps.accounts.plans import quota_ensure
from apps.accounts.quotas import LiveUsage, teams_usage
from apps.core.queue import enqueue, enqueue_many
from apps.jobs.gang import gang_rank_load, place_gang
from apps.jobs.models import GpuLease, Job, JobRank, JobStatus, SchedulerState
from apps.jobs.transitions import HOLDING
from apps.nodes.models import Gpu, Node
from apps.nodes.services import placeable_nodes

logger = logging.getLogger(__name__)
RUN_TASK = "apps.jobs.tasks.run_job"  # what a node's worker runs for one attempt of a job
PASS_TASK = "apps.jobs.tasks.place_queued_jobs"  # noqa: S105 (a task name) one coalesced placement pass
PASS_LOCK = 0x1E97_0001  # the advisory lock key placement passes take turns on (PostgreSQL)
# A request that found a pass pending this long ago queues another one (its task was lost).
PASS_PENDING_STALE_SECONDS = 60
WRITE_BATCH = 500  # rows per bulk statement
NEW_JOB_REASON = "waiting to be placed"  # a submitted job's reason until a pass gives it one


def live_usage(team_ids: list[int]) -> dict[int, LiveUsage]:
    """GPUs held and jobs scheduled or running, per team (the quotas' live figures)."""
    gpus = dict(GpuLease.objects.filter(job__team_id__in=team_ids).values_list("job__team_id").annotate(n=Count("pk")))
    jobs = dict(
        Job.objects.filter(team_id__in=team_ids, status__in=HOLDING).values_list("team_id").annotate(n=Count("pk"))
    )
    return {team: LiveUsage(gpus=gpus.get(team, 0), running_jobs=jobs.get(team, 0)) for team in team_ids}


def node_load(node_ids: list[int]):
    """The jobs each node runs and the GPUs they hold (the nodes app's load source)."""
    from apps.nodes.load import NodeJob, NodeLoad

    loads = {node_id: NodeLoad() for node_id in node_ids}
    holding = Job.objects.filter(node_id__in=node_ids, status__in=HOLDING).order_by("pk")
    for job in holding.only("pk", "team_id", "kind", "status", "gpu_indexes", "node_id"):
        loads[job.node_id].jobs.append(NodeJob(job.pk, job.team_id, job.kind, job.status, tuple(job.gpu_indexes)))
    ranks = JobRank.objects.filter(
        node_id__in=node_ids, rank__gt=0, job__status__in=HOLDING, attempt=F("job__attempts")
    ).select_related("job")
    for rank in ranks.only("node_id", "gpu_indexes", "job__id", "job__team_id", "job__kind", "job__status"):
        job = rank.job  # a gang's share on this node: its rank 1.. holds a slot and GPUs here too
        loads[rank.node_id].jobs.append(NodeJob(job.pk, job.team_id, job.kind, job.status, tuple(rank.gpu_indexes)))
    return loads


# --- asking for a pass ------------------------------------------------------------------------------


def jobs_request_pass() -> None:
    """Ask for a placement pass soon (once the surrounding transaction commits).

    Many requests in a moment make one pass: a request queues the pass task only when none is
    pending (one conditional update; a pending one older than PASS_PENDING_STALE_SECONDS is
    taken as lost). The pass clears the flag as it starts, so a request made during a pass gets
    a pass of its own after it.
    """
    transaction.on_commit(_request_now)


def _request_now() -> None:
    now = timezone.now()
    stale = now - timedelta(seconds=PASS_PENDING_STALE_SECONDS)
    free = Q(pass_pending=False) | Q(pass_requested_at__lt=stale) | Q(pass_requested_at__isnull=True)
    claimed = SchedulerState.objects.filter(free, pk=1).update(pass_pending=True, pass_requested_at=now)
    if not claimed:
        _, created = SchedulerState.objects.get_or_create(
            pk=1, defaults={"pass_pending": True, "pass_requested_at": now}
        )
        if not created:
            return  # a pass is pending: it will see this request's work too
    enqueue(PASS_TASK, group="scheduler")


def jobs_pass() -> int:
    """The pass task: wait out LEPTON_SCHEDULER_MIN_INTERVAL since the last pass, clear the flag, place."""
    state = SchedulerState.objects.filter(pk=1).values_list("last_pass_at", flat=True).first()
    interval = settings.LEPTON_SCHEDULER_MIN_INTERVAL
    if state is not None and interval > 0:
        wait = interval - (timezone.now() - state).total_seconds()
        if wait > 0:
            time.sleep(min(wait, interval))
    SchedulerState.objects.filter(pk=1).update(pass_pending=False, last_pass_at=timezone.now())
    return jobs_place_queued()


def jobs_pass_if_overdue() -> int:
    """Run a requested pass here if no worker has started it for a while (a heartbeat calls this).

    The pass task goes to the general queue; a cluster whose general workers are all gone (or
    busy) still places: the first heartbeat after LEPTON_SCHEDULER_PASS_GRACE takes the pending
    pass over (one conditional update decides which). Returns how many jobs it placed.
    """
    now = timezone.now()
    overdue = now - timedelta(seconds=settings.LEPTON_SCHEDULER_PASS_GRACE)
    taken = SchedulerState.objects.filter(pk=1, pass_pending=True, pass_requested_at__lt=overdue).update(
        pass_pending=False, last_pass_at=now
    )
    return jobs_place_queued() if taken else 0


def reap_due() -> bool:
    """True for one caller per LEPTON_REAP_INTERVAL_SECONDS (node heartbeats run the reaper this often)."""
    now = timezone.now()
    since = now - timedelta(seconds=settings.LEPTON_REAP_INTERVAL_SECONDS)
    due = Q(last_reap_at__isnull=True) | Q(last_reap_at__lt=since)
    if SchedulerState.objects.filter(due, pk=1).update(last_reap_at=now):
        return True
    _, created = SchedulerState.objects.get_or_create(pk=1, defaults={"last_reap_at": now})
    return created


# --- the pass ----------------------------------------------------------------------------------------


@dataclass
class _Node:
    node: Node
    slots: int  # free worker slots
    gpus: list[Gpu]  # free GPUs, by index
    jobs: int  # jobs it holds


@dataclass
class _Team:
    team_id: int
    quota: TeamQuota
    gpus: int  # held now (and by what this pass placed)
    jobs: int
    gpu_hours: float
    pools: frozenset[str]
    queue: list[Job] = field(default_factory=list)  # candidates, best first
    next: int = 0


@dataclass
class _Plan:
    placed: list[tuple[Job, _Node, list[Gpu]]] = field(default_factory=list)
    waiting: dict[int, str] = field(default_factory=dict)  # job id -> why
    gangs: list[Job] = field(default_factory=list)


def jobs_place_queued() -> int:
    """Place what fits now; note why the rest waits. Returns how many jobs were placed."""
    with transaction.atomic():
        _take_turn()
        counts = dict(
            Job.objects.filter(status=JobStatus.QUEUED, cancel_requested_at__isnull=True)
            .values_list("team_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        if not counts:
            return 0
        nodes, online = _load_nodes()
        teams = _load_teams(sorted(counts))
        free = sum(n.slots for n in nodes)
        # First look at about twice each team's fair share of the free slots (with none free, at
        # each team's first jobs, so the head of every queue says why it waits); a team that runs
        # out of those while slots remain gets its next ones, up to the free slots, in one more round.
        # (One more than that: the first job a team cannot start is there to be told why.)
        depth = min(max(counts.values()), free, 2 * -(-free // len(counts))) + 1
        for job in _candidates(depth):
            teams[job.team_id].queue.append(job)
        plan = _Plan()
        _plan(plan, teams, nodes)
        left = sum(n.slots for n in nodes)
        more = [t.team_id for t in teams.values() if t.next == len(t.queue) and counts[t.team_id] > len(t.queue)]
        if left and more and depth <= free:
            for job in _candidates(free + 1, after=depth, teams=more):
                teams[job.team_id].queue.append(job)
            _plan(plan, teams, nodes)
        for team in teams.values():  # the first job the pass did not reach says why (every slot is taken)
            if team.next < len(team.queue):
                plan.waiting[team.queue[team.next].pk] = _busy(online)
        return _write(plan)


def _take_turn() -> None:
    """One pass at a time: on PostgreSQL a transaction-scoped advisory lock (SQLite's IMMEDIATE
    write transactions are already one at a time)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PASS_LOCK])


def _load_nodes() -> tuple[list[_Node], int]:
    """The placeable nodes with a free worker slot (and their free GPUs), and how many are placeable."""
    nodes = list(placeable_nodes().order_by("name"))
    held = defaultdict(
        int,
        Job.objects.filter(node__in=nodes, status__in=HOLDING)
        .values_list("node_id")
        .annotate(n=Count("pk"))
        .order_by(),
    )
    for node_id, ranks in gang_rank_load([n.pk for n in nodes]).items():  # multi-node jobs' other nodes
        held[node_id] += ranks
    open_nodes = [n for n in nodes if held.get(n.pk, 0) < n.worker_slots]
    free = defaultdict(list)
    gpus = Gpu.objects.filter(node__in=open_nodes, lease__isnull=True).order_by("node_id", "index")
    for gpu in gpus.only("pk", "node_id", "index", "model_name", "memory_total_bytes"):
        free[gpu.node_id].append(gpu)
    return [_Node(n, n.worker_slots - held.get(n.pk, 0), free[n.pk], held.get(n.pk, 0)) for n in open_nodes], len(nodes)


def _load_teams(team_ids: list[int]) -> dict[int, _Team]:
    """Lock the teams' quota rows (in id order: no deadlock between placers) and read their usage."""
    locked = TeamQuota.objects.select_for_update(of=("self",)).select_related("plan").order_by("team_id")
    quotas = {q.team_id: q for q in locked.filter(team_id__in=team_ids)}
    missing = [t for t in team_ids if t not in quotas]
    if missing:  # a team without its row: make it on the default plan, then lock it like the others
        for team in Team.objects.filter(pk__in=missing):
            quota_ensure(team)
        quotas.update({q.team_id: q for q in locked.filter(team_id__in=missing)})
    usage = teams_usage(team_ids)
    return {
        t: _Team(t, quotas[t], usage[t].gpus, usage[t].running_jobs, usage[t].gpu_hours, quotas[t].pools)
        for t in team_ids
        if t in quotas
    }


_CANDIDATE_FIELDS = (
    "pk",
    "team_id",
    "priority",
    "created_at",
    "gpus",
    "nodes",
    "pool",
    "gpu_model",
    "min_gpu_memory_bytes",
)


def _candidates(depth: int, *, after: int = 0, teams: list[int] | None = None) -> list[Job]:
    """Per team and kind of request, its queued jobs from place `after` + 1 to `depth`, best first."""
    queued = Job.objects.filter(status=JobStatus.QUEUED, cancel_requested_at__isnull=True)
    if teams is not None:
        queued = queued.filter(team_id__in=teams)
    ranked = (
        queued.annotate(
            place=Window(
                RowNumber(),
                partition_by=[
                    F("team_id"),
                    F("gpus"),
                    F("nodes"),
                    F("pool"),
                    F("gpu_model"),
                    F("min_gpu_memory_bytes"),
                ],
                order_by=[F("priority").desc(), F("created_at").asc(), F("pk").asc()],
            )
        )
        .filter(place__gt=after, place__lte=depth)
        .only(*_CANDIDATE_FIELDS)
    )
    return sorted(ranked, key=lambda j: (j.team_id, -j.priority, j.created_at, j.pk))


def _plan(plan: _Plan, teams: dict[int, _Team], nodes: list[_Node]) -> None:
    """Fair order in memory: the team holding least goes next and tries its next job."""
    turn = [(t.jobs, t.gpus, t.team_id) for t in teams.values() if t.next < len(t.queue)]
    heapq.heapify(turn)
    slots = sum(n.slots for n in nodes)
    while turn and slots:
        _, _, team_id = heapq.heappop(turn)
        team = teams[team_id]
        job = team.queue[team.next]
        team.next += 1
        if job.nodes > 1:
            plan.gangs.append(job)  # spans nodes: placed on its own, all or nothing (apps.jobs.gang)
        else:
            outcome = _fit(job, team, nodes)
            if isinstance(outcome, str):
                plan.waiting[job.pk] = outcome
            else:
                node, gpus = outcome
                node.slots -= 1
                node.jobs += 1
                slots -= 1
                _remove(node.gpus, gpus)
                team.jobs += 1
                team.gpus += job.gpus
                plan.placed.append((job, node, gpus))
        if team.next < len(team.queue):
            heapq.heappush(turn, (team.jobs, team.gpus, team_id))


def _remove(free: list[Gpu], taken: list[Gpu]) -> None:
    ids = {g.pk for g in taken}
    free[:] = [g for g in free if g.pk not in ids]


def _busy(online: int) -> str:
    if not online:
        return "waiting: no node is online"
    return f"waiting: every worker slot of the {online} online node(s) is busy"


def _fit(job: Job, team: _Team, nodes: list[_Node]) -> tuple[_Node, list[Gpu]] | str:
    """The node (and GPUs) for this job within the team's quota and pools, or the reason there is none."""
    quota = team.quota
    if job.gpus and team.gpus + job.gpus > quota.limit("max_concurrent_gpus"):
        limit = quota.limit("max_concurrent_gpus")
        return f"waiting: team quota: {team.gpus} of {limit} GPUs in use; this needs {job.gpus} more"
    if team.jobs + 1 > quota.limit("max_running_jobs"):
        return f"waiting: team quota: {team.jobs} of {quota.limit('max_running_jobs')} running jobs"
    if job.gpus and team.gpu_hours >= quota.limit("gpu_hours_per_month"):
        used = f"{team.gpu_hours:,.1f}".rstrip("0").rstrip(".")
        return f"waiting: team quota: {used} of {quota.limit('gpu_hours_per_month')} GPU-hours used this month"
    if job.pool and team.pools and job.pool not in team.pools:
        return f"waiting: team may not use pool {job.pool} (allowed: {', '.join(sorted(team.pools))})"
    where = _where(job, team)
    candidates = [n for n in nodes if n.slots > 0 and _in_pools(n, job, team)]
    if not candidates:
        return f"waiting: no {where}node has a free worker slot"
    if job.gpus == 0:
        node = min(candidates, key=lambda n: (n.jobs / n.node.worker_slots, n.node.name))
        return node, []
    best = None
    for node in candidates:
        usable = [g for g in node.gpus if _gpu_fits(g, job)]
        if len(usable) < job.gpus:
            continue
        if best is None or (len(usable), node.node.name) < (len(best[1]), best[0].node.name):
            best = (node, usable)  # best fit: keep big gaps for big jobs
    if best is None:
        return f"waiting: no {where}node has {job.gpus} free {_gpu_words(job)}"
    return best[0], best[1][: job.gpus]


def _in_pools(node: _Node, job: Job, team: _Team) -> bool:
    if job.pool:
        return node.node.pool == job.pool
    return not team.pools or node.node.pool in team.pools


def _gpu_fits(gpu: Gpu, job: Job) -> bool:
    if job.gpu_model and job.gpu_model.lower() not in gpu.model_name.lower():
        return False
    return not job.min_gpu_memory_bytes or gpu.memory_total_bytes >= job.min_gpu_memory_bytes


def _where(job: Job, team: _Team) -> str:
    if job.pool:
        return f"pool-{job.pool} "
    if team.pools:
        return f"{'/'.join(sorted(team.pools))}-pool "
    return "online "


def _gpu_words(job: Job) -> str:
    from apps.core.units import format_bytes

    noun = "GPU" if job.gpus == 1 else "GPUs"
    parts = [f"{job.gpu_model} " if job.gpu_model else "", noun]
    if job.min_gpu_memory_bytes:
        parts.append(f" with {format_bytes(job.min_gpu_memory_bytes)} or more")
    return "".join(parts)


def _write(plan: _Plan) -> int:
    """Write what the plan placed (for the jobs still queued once locked), the reasons, and the gangs."""
    placed = plan.placed
    if placed:
        ids = [job.pk for job, _, _ in placed]
        still = dict(
            Job.objects.select_for_update()
            .filter(pk__in=ids, status=JobStatus.QUEUED, cancel_requested_at__isnull=True)
            .values_list("pk", "attempts")
        )
        placed = [(job, node, gpus) for job, node, gpus in placed if job.pk in still]  # others: cancelled meanwhile
    if placed:
        now = timezone.now()
        GpuLease.objects.bulk_create(
            [GpuLease(gpu=gpu, job=job, created_at=now) for job, _, gpus in placed for gpu in gpus],
            batch_size=WRITE_BATCH,
        )
        for start in range(0, len(placed), WRITE_BATCH):
            _mark_scheduled(placed[start : start + WRITE_BATCH], now)
        sends = [(job.pk, still[job.pk] + 1, node.node.queue) for job, node, _ in placed]
        transaction.on_commit(lambda: jobs_dispatch(sends))
    gangs = {job.pk: _place_gang(job) for job in plan.gangs}
    plan.waiting.update((pk, outcome) for pk, outcome in gangs.items() if isinstance(outcome, str))
    _note_waiting(plan.waiting)
    return len(placed) + sum(1 for outcome in gangs.values() if outcome is True)


def _mark_scheduled(chunk: list[tuple[Job, _Node, list[Gpu]]], now) -> None:
    """Each job of the chunk becomes scheduled as its next attempt on its node and GPUs: one statement.

    The rows are locked and still queued (see `_write`), so this is what `job_transition` to
    scheduled would write for each. PostgreSQL takes the per-job values as a VALUES list joined
    by id (a CASE per column costs Django more to build than the database to run); other
    databases get the CASE form.
    """
    rows = [
        (job.pk, node.node.pk, [g.index for g in gpus], f"placed on {node.node.name}; starting")
        for job, node, gpus in chunk
    ]
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Job._meta.db_table)
        values = ", ".join(["(%s::bigint, %s::bigint, %s::jsonb, %s::text)"] * len(rows))
        sql = (  # only placeholders are joined in: every value is a parameter
            f"UPDATE {table} AS j SET status = %s, attempts = j.attempts + 1, node_id = v.node_id, "  # noqa: S608
            "gpu_indexes = v.gpus, status_reason = v.reason, dispatched_at = NULL, claimed_at = NULL, "
            f"heartbeat_at = %s, scheduled_at = %s FROM (VALUES {values}) AS v(id, node_id, gpus, reason) "
            "WHERE j.id = v.id"
        )
        params = [JobStatus.SCHEDULED.value, now, now]
        for pk, node_id, gpus, reason in rows:
            params += [pk, node_id, json.dumps(gpus), reason]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    Job.objects.filter(pk__in=[pk for pk, *_ in rows]).update(
        status=JobStatus.SCHEDULED,
        attempts=F("attempts") + 1,
        node_id=Case(*[When(pk=pk, then=Value(node_id)) for pk, node_id, _, _ in rows]),
        gpu_indexes=Case(
            *[When(pk=pk, then=Value(gpus, output_field=Job.gpu_indexes.field)) for pk, _, gpus, _ in rows]
        ),
        status_reason=Case(*[When(pk=pk, then=Value(reason)) for pk, _, _, reason in rows]),
        dispatched_at=None,
        claimed_at=None,
        heartbeat_at=now,
        scheduled_at=now,
    )


def _note_waiting(waiting: dict[int, str]) -> None:
    """Each waiting job's reason, in one statement per batch (a job placed or cancelled meanwhile is left alone)."""
    items = list(waiting.items())
    for start in range(0, len(items), WRITE_BATCH):
        chunk = items[start : start + WRITE_BATCH]
        by_reason = defaultdict(list)
        for pk, reason in chunk:
            by_reason[reason].append(pk)
        reason = Case(*[When(pk__in=pks, then=Value(text)) for text, pks in by_reason.items()])
        Job.objects.filter(pk__in=[pk for pk, _ in chunk], status=JobStatus.QUEUED).update(status_reason=reason)


def _place_gang(job: Job) -> bool | str:
    """A job spanning nodes is placed all at once by the gang placer (in a savepoint of this pass)."""
    try:
        with transaction.atomic():
            return place_gang(job)
    except IntegrityError:
        return "waiting: its GPUs were just taken by another placement"


def jobs_dispatch(sends: list[tuple[int, int, str | None]]) -> None:
    """Hand each placed attempt's task to its node's queue, then record in one statement per attempt
    number that they were handed over.

    Sent before it is recorded: a death in between sends it twice, which is harmless (only one
    worker can claim the attempt), where the other order would lose it. A broker failure leaves
    them unrecorded for `jobs_dispatch_undelivered`.
    """
    enqueue_many(RUN_TASK, [(queue, (job_id, attempt)) for job_id, attempt, queue in sends], group="jobs")
    by_attempt = defaultdict(list)
    for job_id, attempt, _ in sends:
        by_attempt[attempt].append(job_id)
    now = timezone.now()
    for attempt, ids in by_attempt.items():
        Job.objects.filter(pk__in=ids, attempts=attempt, dispatched_at__isnull=True).update(dispatched_at=now)


def jobs_dispatch_undelivered() -> int:
    """Send the tasks of attempts placed over LEPTON_DISPATCH_GRACE_SECONDS ago that never reached the broker.

    Each is claimed first (a conditional update), so of two sweeps running at once one sends it.
    Returns how many were sent.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.LEPTON_DISPATCH_GRACE_SECONDS)
    undelivered = Job.objects.filter(
        status=JobStatus.SCHEDULED, claimed_at__isnull=True, dispatched_at__isnull=True, scheduled_at__lt=cutoff
    ).select_related("node")
    sent = 0
    for job in undelivered:
        mine = Job.objects.filter(pk=job.pk, attempts=job.attempts, dispatched_at__isnull=True)
        if mine.update(dispatched_at=timezone.now()):
            sent += _send_claimed(job)
    return sent


def _send_claimed(job: Job) -> int:
    try:
        enqueue(RUN_TASK, job.pk, job.attempts, group="jobs", queue=job.node.queue if job.node else None)
    except Exception:  # the broker is down: leave it for the next sweep
        logger.exception("job %s attempt %s: could not reach the broker", job.pk, job.attempts)
        Job.objects.filter(pk=job.pk, attempts=job.attempts).update(dispatched_at=None)
        return 0
    logger.warning("job %s attempt %s: its placer never sent it; sent now", job.pk, job.attempts)
    return 1
