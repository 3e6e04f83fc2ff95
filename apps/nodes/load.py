"""What runs on each node, as the scheduler (the jobs app) reports it.

`nodes` imports no app above it, so the jobs app registers a function that tells, for a set
of nodes, which jobs they run and which GPUs those hold (`register_load_source`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class NodeJob:
    job_id: int
    team_id: int
    kind: str
    status: str
    gpu_indexes: tuple[int, ...]


@dataclass
class NodeLoad:
    jobs: list[NodeJob] = field(default_factory=list)

    @property
    def held_gpus(self) -> dict[int, NodeJob]:
        return {index: job for job in self.jobs for index in job.gpu_indexes}


LoadSource = Callable[[list[int]], dict[int, NodeLoad]]
_sources: list[LoadSource] = []


def register_load_source(source: LoadSource) -> None:
    if source not in _sources:
        _sources.append(source)


def nodes_load(node_ids: list[int]) -> dict[int, NodeLoad]:
    loads = {node_id: NodeLoad() for node_id in node_ids}
    for source in _sources:
        for node_id, load in source(node_ids).items():
            loads.setdefault(node_id, NodeLoad()).jobs.extend(load.jobs)
    return loads
