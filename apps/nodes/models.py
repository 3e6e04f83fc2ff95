"""Nodes (machines that run jobs) and their GPUs."""

from django.db import models
from django.utils import timezone


class Node(models.Model):
    """A machine running the node agent: it heartbeats and runs the jobs placed on its queue."""

    class Status(models.TextChoices):
        ONLINE = "online", "Online"
        DRAINING = "draining", "Draining"  # finishes its jobs, takes no new ones
        OFFLINE = "offline", "Offline"

    name = models.SlugField(max_length=100, unique=True)
    hostname = models.CharField(max_length=255, blank=True)
    pool = models.SlugField(max_length=50, default="default")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ONLINE, db_index=True)
    status_reason = models.CharField(max_length=255, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)
    started_at = models.DateTimeField(default=timezone.now)
    cpu_count = models.PositiveIntegerField(default=0)
    memory_bytes = models.PositiveBigIntegerField(default=0)
    worker_slots = models.PositiveIntegerField(default=1, help_text="Jobs the node runs at once.")
    torch_version = models.CharField(max_length=50, blank=True)
    cuda_version = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["pool", "name"]

    def __str__(self):
        return self.name

    @property
    def queue(self) -> str:
        """The django-q2 queue (cluster name) this node's workers take jobs from."""
        return f"lepton-node-{self.name}"


class Gpu(models.Model):
    """One GPU of a node, with the live figures of its last heartbeat."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="gpus")
    index = models.PositiveSmallIntegerField()
    model_name = models.CharField(max_length=200, blank=True)
    memory_total_bytes = models.PositiveBigIntegerField(default=0)
    memory_used_bytes = models.PositiveBigIntegerField(default=0)
    utilization = models.FloatField(null=True, blank=True, help_text="0..1")
    temperature_c = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["node", "index"]
        constraints = [models.UniqueConstraint(fields=["node", "index"], name="gpu_index_unique_on_node")]

    def __str__(self):
        return f"{self.node.name}:gpu{self.index}"
