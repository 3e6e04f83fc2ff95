"""Knowledge distillation (plain torch): a student learns from the teacher's softened logits and the labels.

loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, y)
(Hinton et al. 2015). With `label_fraction` < 1 only that share of the training samples keeps
its label (the rest are marked -1 and learn from the teacher alone): the label-scarce case.
"""

from dataclasses import replace

import numpy as np
import torch
from torch.nn import functional

UNLABELLED = -1


def distillation_loss(teacher, *, temperature: float, alpha: float):
    """A loss_fn(logits, inputs, labels) for the training loop; labels of -1 count for the teacher term only."""
    teacher.eval()

    def loss(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = teacher(x)
        soft = (
            functional.kl_div(
                functional.log_softmax(logits / temperature, dim=1),
                functional.softmax(target / temperature, dim=1),
                reduction="batchmean",
            )
            * temperature**2
        )
        if bool((y == UNLABELLED).all()):
            return soft
        hard = functional.cross_entropy(logits, y, ignore_index=UNLABELLED)
        return alpha * soft + (1 - alpha) * hard

    return loss


def scarce_labels(split, fraction: float, seed: int):
    """The split with only a seeded `fraction` of its samples labelled (the others marked -1)."""
    if fraction >= 1:
        return split
    rng = np.random.default_rng(seed)
    keep = rng.permutation(len(split.indices))[: max(1, round(fraction * len(split.indices)))]
    labels = np.array(split.labels, dtype=np.int64, copy=True)
    hidden = np.setdiff1d(split.indices, split.indices[keep])
    labels[hidden] = UNLABELLED
    return replace(split, labels=labels)


def labelled_only(split, fraction: float, seed: int):
    """The same labelled samples as `scarce_labels`, alone (the baseline that sees no teacher)."""
    if fraction >= 1:
        return split
    rng = np.random.default_rng(seed)
    keep = rng.permutation(len(split.indices))[: max(1, round(fraction * len(split.indices)))]
    return replace(split, indices=np.sort(split.indices[keep]))
