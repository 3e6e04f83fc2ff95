"""Reads of nodes: the inventory with live figures and what runs where (team-aware)."""

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from apps.accounts.selectors import user_teams
from apps.core.errors import NotFound
from apps.nodes.load import NodeLoad, nodes_load
from apps.nodes.models import Gpu, Node


def nodes_with_gpus() -> QuerySet[Node]:
    return Node.objects.prefetch_related(Prefetch("gpus", queryset=Gpu.objects.order_by("index"))).order_by(
        "pool", "name"
    )


def node_by_pk(pk) -> Node:
    node = nodes_with_gpus().filter(pk=pk).first()
    if node is None:
        raise NotFound("Node not found.")
    return node


@dataclass
class NodeView:
    """A node as one user sees it: other teams' jobs are counted, never named."""

    node: Node
    load: NodeLoad
    my_team_ids: set[int]

    @property
    def heartbeat_age_seconds(self) -> float | None:
        beat = self.node.last_heartbeat_at
        return None if beat is None else (timezone.now() - beat).total_seconds()

    @property
    def gpus(self) -> list[dict]:
        held = self.load.held_gpus
        rows = []
        for gpu in self.node.gpus.all():
            job = held.get(gpu.index)
            mine = job is not None and job.team_id in self.my_team_ids
            rows.append({"gpu": gpu, "held": job is not None, "job_id": job.job_id if mine else None})
        return rows

    @property
    def free_gpus(self) -> int:
        return sum(1 for row in self.gpus if not row["held"])

    @property
    def running_jobs(self) -> int:
        return len(self.load.jobs)

    @property
    def my_jobs(self) -> list[int]:
        return [job.job_id for job in self.load.jobs if job.team_id in self.my_team_ids]


def node_views(user, nodes: list[Node]) -> list[NodeView]:
    """Nodes with their load in two queries (plus one per node-load source), however many nodes."""
    loads = nodes_load([node.pk for node in nodes])
    mine = set(user_teams(user).values_list("pk", flat=True))
    return [NodeView(node, loads[node.pk], mine) for node in nodes]


def free_gpu_count(views: list[NodeView]) -> int:
    return sum(view.free_gpus for view in views if view.node.status == Node.Status.ONLINE)
