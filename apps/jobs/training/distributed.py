"""Data-parallel training for a job holding N > 1 GPUs: one process per GPU, torch.distributed.

The runner's process is rank 0 (it reports progress and writes metrics, checkpoints and the
result); it starts ranks 1..N-1 as separate processes (`apps.jobs.training.ddp_rank`), so no
multiprocessing from inside a worker is needed. NCCL on GPUs, gloo on CPUs (how tests run it).
"""

import json
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from django.conf import settings

from apps.core.storage import held, local_path
from apps.jobs.kinds import JobFailed
from apps.jobs.training.ddp_rank import weights_digest
from apps.jobs.training.loop import TrainConfig, TrainingState, train


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_device(job, rank: int) -> str:
    if job.gpus > 0 and torch.cuda.is_available() and len(job.gpu_indexes) > rank:
        return f"cuda:{job.gpu_indexes[rank]}"
    return "cpu"


def _start_ranks(
    context, config: TrainConfig, rank_config: dict, init_method: str, backend: str, folder: Path, checkpoint: str
):
    job, world = context.job, context.job.gpus
    ranks = []
    for rank in range(1, world):
        path = folder / f"rank-{rank}.json"
        path.write_text(
            json.dumps(
                {
                    **rank_config,
                    "rank": rank,
                    "world_size": world,
                    "init_method": init_method,
                    "backend": backend,
                    "device": _rank_device(job, rank),
                    "train": asdict(config),
                    "checkpoint": str(local_path(checkpoint)) if checkpoint else None,
                }
            )
        )
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
    """Train on all the job's GPUs; every rank must end with the same weights (checked and logged)."""
    world = context.job.gpus
    backend = "nccl" if context.device.type == "cuda" else "gloo"
    init_method = f"tcp://127.0.0.1:{_free_port()}"
    context.log(f"data-parallel training: {world} processes, {backend}")
    job = context.job
    checkpoint = job.__class__.objects.filter(pk=job.pk).values_list("checkpoint", flat=True).first()
    with tempfile.TemporaryDirectory() as folder, held(checkpoint):  # the ranks open it themselves
        ranks = _start_ranks(context, config, rank_config, init_method, backend, Path(folder), checkpoint)
        finished = False
        try:
            dist.init_process_group(backend, init_method=init_method, rank=0, world_size=world)
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
    _check_same_weights(context, weights_digest(module.state_dict()), outputs)
    return final


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


def _check_same_weights(context, own: str, outputs: list[str]) -> None:
    context.log(f"rank 0 final weights sha256 {own}")
    for rank, output in enumerate(outputs, start=1):
        try:
            digest = json.loads(output.strip().splitlines()[-1])["final_sha256"]
        except (ValueError, IndexError, KeyError):
            raise JobFailed(f"rank {rank} did not finish: {output[-500:]}") from None
        context.log(f"rank {rank} final weights sha256 {digest}")
        if digest != own:
            raise JobFailed(f"rank {rank} ended with different weights from rank 0")
