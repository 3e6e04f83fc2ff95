"""Every write to nodes: registration, heartbeats, draining, and marking silent nodes offline.

Nodes are shared infrastructure: any signed-in user sees them; only operators (staff)
drain them. The jobs app decides what happens to the jobs of a node that goes offline.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, PermissionDenied
from apps.nodes.inventory import GpuInfo
from apps.nodes.models import Gpu, Node


def _require_operator(actor) -> None:
    if not getattr(actor, "is_staff", False):
        raise PermissionDenied("Only operators (staff) can drain or undrain nodes.")


@transaction.atomic
def node_register(*, name: str, pool: str, facts: dict, gpus: list[GpuInfo], worker_slots: int) -> Node:
    """Upsert a node at agent start: back online (a draining node stays draining) with its inventory."""
    now = timezone.now()
    node, _ = Node.objects.select_for_update().get_or_create(name=name, defaults={"pool": pool})
    node.pool, node.hostname, node.started_at, node.last_heartbeat_at = pool, facts["hostname"], now, now
    node.cpu_count, node.memory_bytes = facts["cpu_count"], facts["memory_bytes"]
    node.torch_version, node.cuda_version = facts["torch_version"], facts["cuda_version"]
    node.worker_slots = worker_slots
    if node.status != Node.Status.DRAINING:
        node.status, node.status_reason = Node.Status.ONLINE, ""
    node.save()
    _sync_gpus(node, gpus)
    return node


def _sync_gpus(node: Node, gpus: list[GpuInfo]) -> None:
    node.gpus.exclude(index__in=[g.index for g in gpus]).delete()
    now = timezone.now()
    for gpu in gpus:
        Gpu.objects.update_or_create(
            node=node,
            index=gpu.index,
            defaults={
                "model_name": gpu.model_name,
                "memory_total_bytes": gpu.memory_total_bytes,
                "memory_used_bytes": gpu.memory_used_bytes,
                "utilization": gpu.utilization,
                "temperature_c": gpu.temperature_c,
                "updated_at": now,
            },
        )


def node_heartbeat(*, node_id: int, gpus: list[GpuInfo]) -> Node:
    """The agent is alive: refresh the heartbeat and the GPUs' live figures."""
    now = timezone.now()
    Node.objects.filter(pk=node_id).update(last_heartbeat_at=now)
    offline = Node.objects.filter(pk=node_id, status=Node.Status.OFFLINE)
    back = offline.update(status=Node.Status.ONLINE, status_reason="")
    for gpu in gpus:
        Gpu.objects.filter(node_id=node_id, index=gpu.index).update(
            memory_used_bytes=gpu.memory_used_bytes,
            utilization=gpu.utilization,
            temperature_c=gpu.temperature_c,
            updated_at=now,
        )
    node = Node.objects.get(pk=node_id)
    node.rejoined = bool(back)  # it was offline: it joins again (the jobs app asks for a placement pass)
    return node


def node_drain(*, actor, node: Node) -> Node:
    """Let the node finish its jobs and place nothing new there."""
    _require_operator(actor)
    if node.status == Node.Status.OFFLINE:
        raise Conflict(f"Node {node.name} is offline; there is nothing to drain.")
    Node.objects.filter(pk=node.pk).update(status=Node.Status.DRAINING, status_reason=f"drained by {actor.username}")
    node.refresh_from_db()
    return node


def node_undrain(*, actor, node: Node) -> Node:
    _require_operator(actor)
    Node.objects.filter(pk=node.pk, status=Node.Status.DRAINING).update(status=Node.Status.ONLINE, status_reason="")
    node.refresh_from_db()
    return node


def node_stopped(*, node_id: int) -> None:
    """The agent shut down cleanly: the node is offline at once (its jobs are requeued by the reaper)."""
    Node.objects.filter(pk=node_id).update(status=Node.Status.OFFLINE, status_reason="the node agent stopped")


def nodes_mark_silent_offline() -> list[int]:
    """Nodes whose heartbeat is older than LEPTON_NODE_STALE_SECONDS go offline; returns their ids."""
    cutoff = timezone.now() - timedelta(seconds=settings.LEPTON_NODE_STALE_SECONDS)
    silent = list(
        Node.objects.filter(
            status__in=(Node.Status.ONLINE, Node.Status.DRAINING), last_heartbeat_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    Node.objects.filter(pk__in=silent).update(
        status=Node.Status.OFFLINE, status_reason=f"no heartbeat for {settings.LEPTON_NODE_STALE_SECONDS} s"
    )
    return silent


def placeable_nodes():
    """Nodes that take new jobs: online, not draining, heard from recently."""
    cutoff = timezone.now() - timedelta(seconds=settings.LEPTON_NODE_STALE_SECONDS)
    return Node.objects.filter(status=Node.Status.ONLINE, last_heartbeat_at__gte=cutoff)
