"""One extra rank of a data-parallel training run (plain torch; no Django, no database).

    python -m apps.jobs.training.ddp_rank <config.json>

The job's runner is rank 0: it reports progress, writes metrics and checkpoints. It starts
ranks 1..N-1 with this module, each on its own GPU (or CPU with gloo), joining the same
process group. DDP makes every rank start from rank 0's weights and average gradients each
step, so all ranks end with the same weights: each prints the SHA-256 of its final weights
as a JSON line for rank 0 to check and log.
"""

import hashlib
import json
import sys

import torch
import torch.distributed as dist

from apps.datasets.loading import load_splits
from apps.jobs.training.loop import TrainConfig, TrainingState, train
from apps.registry.architectures import build_model
from apps.registry.rebuild import rebuild_module
from apps.registry.weights import load_weights


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


def run(config: dict) -> dict:
    rank, world = config["rank"], config["world_size"]
    device = torch.device(config["device"])
    dist.init_process_group(config["backend"], init_method=config["init_method"], rank=rank, world_size=world)
    try:
        train_split, val_split, _ = load_splits(config["dataset_path"])
        model = _module(config)
        resume = None
        if config.get("checkpoint"):
            resume = TrainingState.from_checkpoint(
                torch.load(config["checkpoint"], map_location="cpu", weights_only=True)
            )
        train(
            model,
            train_split,
            val_split,
            TrainConfig(**config["train"]),
            device=device,
            resume=resume,
            shard=(rank, world),
        )
        return {"rank": rank, "final_sha256": weights_digest(model.state_dict())}
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(json.dumps(run(json.load(handle))), flush=True)
