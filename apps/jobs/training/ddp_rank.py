"""One rank of a data-parallel training run other than rank 0 (plain torch; no Django, no database).

    python -m apps.jobs.training.ddp_rank <config.json>

The job's runner is rank 0: it reports progress, writes metrics and checkpoints, and serves
the run's rendezvous (a `TCPStore` it created on a port the kernel chose). Every other rank
(one per further GPU of a node, and each further node's first rank, which the node's worker
runs through `run` in its own process) connects to that store, says it has joined, and
joins the process group. DDP makes every rank start from rank 0's weights and average
gradients each step, so all ranks end with the same weights: each puts the SHA-256 of its
final weights in the store for rank 0 to check and log (and prints it as a JSON line).
"""

import hashlib
import json
import sys
from collections.abc import Callable
from datetime import timedelta

import torch
import torch.distributed as dist

from apps.datasets.loading import load_splits
from apps.jobs.training.loop import TrainConfig, TrainingState, train
from apps.registry.architectures import build_model
from apps.registry.rebuild import rebuild_module
from apps.registry.weights import load_weights

JOINED = "lepton/joined"  # how many ranks besides rank 0 are about to join the process group
CHECKPOINT = "lepton/checkpoint"  # the checkpoint rank 0 resumed from (every rank resumes from it)


def digest_key(rank: int) -> str:
    return f"lepton/digest/{rank}"


def weights_digest(state_dict: dict) -> str:
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        digest.update(name.encode())
        digest.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _module(config: dict):
    torch.manual_seed(config["train"]["seed"])
    if config.get("base_weights"):
        return rebuild_module(
            config["spec"],
            input_shape=tuple(config["input_shape"]),
            num_classes=config["num_classes"],
            transforms=config["transforms"],
            weights=load_weights(config["base_weights"]),
        )
    return build_model(config["spec"], input_shape=tuple(config["input_shape"]), num_classes=config["num_classes"])


def connect(host: str, port: int, timeout_seconds: float) -> dist.TCPStore:
    """A client of rank 0's store (rank 0 alone serves it)."""
    return dist.TCPStore(host, port, is_master=False, timeout=timedelta(seconds=timeout_seconds))


def join(store, *, backend: str, rank: int, world: int, device: torch.device, timeout_seconds: float) -> None:
    """Join the run's process group on `device` (its own GPU when there is one, set before NCCL starts)."""
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL binds this process's communicator to its current device
    store.add(JOINED, 1)  # rank 0 waits for every rank here, watching its lease meanwhile
    timeout = timedelta(seconds=timeout_seconds)  # as rank 0's (apps.jobs.training.distributed)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)


def run(config: dict, *, on_step: Callable[[int, float], None] = lambda epoch, fraction: None) -> dict:
    rank, world = config["rank"], config["world_size"]
    device = torch.device(config["device"])
    store = connect(config["store_host"], config["store_port"], config["timeout_seconds"])
    train_split, val_split, _ = load_splits(config["dataset_path"])
    model = _module(config)
    resume = None
    if config.get("checkpoint"):
        resume = TrainingState.from_checkpoint(torch.load(config["checkpoint"], map_location="cpu", weights_only=True))
    try:
        join(
            store,
            backend=config["backend"],
            rank=rank,
            world=world,
            device=device,
            timeout_seconds=config["timeout_seconds"],
        )
        train(
            model,
            train_split,
            val_split,
            TrainConfig(**config["train"]),
            device=device,
            resume=resume,
            on_step=on_step,
            shard=(rank, world),
        )
        digest = weights_digest(model.state_dict())
        store.set(digest_key(rank), digest)
        return {"rank": rank, "final_sha256": digest}
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(json.dumps(run(json.load(handle))), flush=True)
