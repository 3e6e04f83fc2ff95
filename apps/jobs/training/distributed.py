"""Data-parallel training through torch.distributed: a job's GPUs on one node, or its `nodes` nodes' GPUs.

World size is `nodes` x max(`gpus`, 1); node k holds the ranks k x per-node .. (k+1) x per-node - 1,
one process per GPU (or one on the CPU). The runner's process is rank 0: it reports progress,
writes metrics, checkpoints and the result, and serves the rendezvous, a `TCPStore` bound to a
port the kernel picks (port 0, read back after the bind, so no other process can take the
port between a pick and its use). For a multi-node job it writes its address and that port to
the job; each further node's worker (`join_data_parallel`, for the job's rank row) reads them,
runs its node's first rank itself and the node's other GPUs' ranks as subprocesses
(`apps.jobs.training.ddp_rank`), so no multiprocessing from inside a worker is needed. The
backend is rank 0's choice at run time, read by every rank from the store: NCCL when rank 0 is
on a GPU, gloo on CPUs (how tests run it). Rank 0 waits for every rank to join while watching
its lease, and ends by checking that every rank's final weights are the same.
"""

import json
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from django.conf import settings

from apps.core.storage import held, local_path
from apps.jobs.kinds import JobFailed
from apps.jobs.training import ddp_rank
from apps.jobs.training.ddp_rank import CHECKPOINT, JOINED, digest_key, weights_digest
from apps.jobs.training.loop import TrainConfig, TrainingState, train

BACKEND = "lepton/backend"


class RanksDidNotJoin(RuntimeError):
    """The run's other ranks did not all join in time (a node or a process of the run is gone): a crash, retried."""


def world_of(job) -> tuple[int, int]:
    """(ranks per node, world size) of a job's data-parallel run."""
    per_node = max(job.gpus, 1)
    return per_node, job.nodes * per_node


def rank_device(gpus: int, gpu_indexes: list[int], local_rank: int) -> torch.device:
    """The GPU of a node's `local_rank`-th rank: the leased GPU's own index on the machine (equal to
    `local_rank` when CUDA_VISIBLE_DEVICES narrows the machine to the job's GPUs); the CPU without CUDA."""
    if gpus > 0 and torch.cuda.is_available() and len(gpu_indexes) > local_rank:
        return torch.device(f"cuda:{gpu_indexes[local_rank]}")
    return torch.device("cpu")


def rendezvous_address() -> str:
    """How the other nodes reach this one: LEPTON_NODE_ADDRESS, else what the host name resolves to."""
    return settings.LEPTON_NODE_ADDRESS or socket.gethostbyname(socket.gethostname())


def _start_local_ranks(gpus: int, gpu_indexes: list[int], first: int, shared: dict, folder: Path):
    """This node's ranks after its first, one process each."""
    ranks = []
    for local_rank in range(1, max(gpus, 1)):
        path = folder / f"rank-{first + local_rank}.json"
        device = rank_device(gpus, gpu_indexes, local_rank)
        path.write_text(json.dumps({**shared, "rank": first + local_rank, "device": str(device)}))
        ranks.append(
            subprocess.Popen(  # noqa: S603 (our own module, our own config)
                [sys.executable, "-m", "apps.jobs.training.ddp_rank", str(path)],
                cwd=settings.BASE_DIR,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return ranks


def train_data_parallel(
    context,
    module,
    train_split,
    val_split,
    config: TrainConfig,
    *,
    resume: TrainingState | None,
    on_step,
    on_epoch,
    rank_config: dict,
) -> TrainingState:
    """Rank 0: serve the rendezvous, train, and check every rank ended with the same weights (logged)."""
    job, timeout = context.job, settings.LEPTON_RENDEZVOUS_SECONDS
    world = world_of(job)[1]
    backend = "nccl" if context.device.type == "cuda" else "gloo"
    store = dist.TCPStore(
        "127.0.0.1", 0, world, is_master=True, wait_for_workers=False, timeout=timedelta(seconds=timeout)
    )
    store.set(BACKEND, backend)
    store.set(CHECKPOINT, context.resumed_from)
    if job.nodes > 1:
        context.write(rendezvous_address=rendezvous_address(), rendezvous_port=store.port)
    context.log(f"data-parallel training: {world} processes on {job.nodes} node(s), {backend}")
    shared = _shared_config(rank_config, config, "127.0.0.1", store.port, world, backend, context.resumed_from)
    # The rank processes open the checkpoint themselves: it is kept from cache eviction meanwhile.
    with tempfile.TemporaryDirectory() as folder, held(context.resumed_from):
        ranks = _start_local_ranks(job.gpus, job.gpu_indexes, 0, shared, Path(folder))
        finished = False
        try:
            _wait_for_ranks(context, store, world, ranks, timeout)
            if context.device.type == "cuda":
                torch.cuda.set_device(context.device)
            # A bounded collective timeout: a rank cut off without a reset (a partitioned node) would
            # otherwise hold this worker for torch's default 30 minutes after the reaper requeued the job.
            dist.init_process_group(backend, store=store, rank=0, world_size=world, timeout=timedelta(seconds=timeout))
            final = train(
                module,
                train_split,
                val_split,
                config,
                device=context.device,
                resume=resume,
                on_step=on_step,
                on_epoch=on_epoch,
                shard=(0, world),
            )
            finished = True
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()
            outputs = _collect(ranks, kill=not finished)
        digests = _rank_digests(store, world, outputs, timeout)
    _check_same_weights(context, weights_digest(module.state_dict()), digests)
    return final


def _shared_config(rank_config, config, host, port, world, backend, checkpoint: str) -> dict:
    return {
        **rank_config,
        "train": asdict(config),
        "checkpoint": str(local_path(checkpoint)) if checkpoint else None,
        "store_host": host,
        "store_port": port,
        "world_size": world,
        "backend": backend,
        "timeout_seconds": settings.LEPTON_RENDEZVOUS_SECONDS,
    }


def _wait_for_ranks(context, store, world: int, local, timeout: float) -> None:
    """Until every other rank is about to join; a cancel or a lost lease (a rank's node lost) stops the wait."""
    deadline = time.monotonic() + timeout
    while (joined := store.add(JOINED, 0)) < world - 1:
        context.check_cancelled()  # raises JobCancelled, or LeaseLost when the reaper requeued the gang
        for process in local:
            if process.poll() is not None:
                raise RanksDidNotJoin(f"a rank process exited before joining: {process.communicate()[1][-1000:]}")
        if time.monotonic() > deadline:
            raise RanksDidNotJoin(f"{world - 1 - joined} of {world - 1} other rank(s) did not join within {timeout} s")
        time.sleep(0.2)


def join_data_parallel(context, config: TrainConfig, rank_config: dict) -> str:
    """A further node's share of a multi-node run (its rank row's worker): returns its first rank's digest."""
    per_node, world = world_of(context.job)
    first = context.rank * per_node
    address, port = context.rendezvous()
    timeout = settings.LEPTON_RENDEZVOUS_SECONDS
    store = ddp_rank.connect(address, port, timeout)
    backend, checkpoint = store.get(BACKEND).decode(), store.get(CHECKPOINT).decode()
    shared = _shared_config(rank_config, config, address, port, world, backend, checkpoint)
    context.log(f"rank {first}: joining {address}:{port} ({backend})" + (", resuming" if checkpoint else ""))
    with tempfile.TemporaryDirectory() as folder, held(checkpoint):  # its local ranks open it themselves
        ranks = _start_local_ranks(context.job.gpus, context.gpu_indexes, first, shared, Path(folder))
        finished = False
        try:
            own = {**shared, "rank": first, "device": str(context.device)}
            result = ddp_rank.run(own, on_step=lambda epoch, fraction: context.check_lost())
            finished = True
        finally:
            _collect(ranks, kill=not finished)
    return result["final_sha256"]


def _collect(ranks, *, kill: bool) -> list[str]:
    outputs = []
    for process in ranks:
        if kill and process.poll() is None:
            process.kill()
        try:
            stdout, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        outputs.append(stdout if process.returncode == 0 else f"exit {process.returncode}: {stderr[-2000:]}")
    return outputs


def _rank_digests(store, world: int, outputs: list[str], timeout: float) -> dict[int, str | None]:
    """Each other rank's final weights digest from the store (None for a rank that did not finish)."""
    keys = [digest_key(rank) for rank in range(1, world)]
    deadline = time.monotonic() + min(timeout, 60)  # they finished the same last step as rank 0
    while not store.check(keys) and time.monotonic() < deadline:
        time.sleep(0.1)
    digests = {rank: store.get(key).decode() if store.check([key]) else None for rank, key in enumerate(keys, 1)}
    for local_rank, output in enumerate(outputs, start=1):  # why a local rank did not finish
        if digests.get(local_rank) is None:
            raise JobFailed(f"rank {local_rank} did not finish: {output[-500:]}")
    return digests


def _check_same_weights(context, own: str, digests: dict[int, str | None]) -> None:
    context.log(f"rank 0 final weights sha256 {own}")
    for rank, digest in digests.items():
        if digest is None:
            raise JobFailed(f"rank {rank} did not finish")
        context.log(f"rank {rank} final weights sha256 {digest}")
        if digest != own:
            raise JobFailed(f"rank {rank} ended with different weights from rank 0")
