"""Measurements checked against hand-computed values and scikit-learn on tiny tensors.
Timings are only checked to be positive and finite: machines are too noisy for more."""

import math

import pytest
import torch
from sklearn.metrics import confusion_matrix, f1_score
from torch import nn
from torch.nn.utils import prune

from apps.registry import measure
from apps.registry.architectures import build_model
from apps.registry.measure import (
    describe_device,
    evaluate_classifier,
    flops_per_sample,
    latency_per_sample,
    parameter_counts,
    pick_device,
    throughput,
)

# Six samples of three classes; the logits put 2.0 on the predicted class, 0 elsewhere.
LABELS = torch.tensor([0, 0, 1, 1, 2, 2])
PREDICTED = torch.tensor([0, 1, 1, 1, 0, 2])


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def _identity_linear(size: int) -> nn.Linear:
    """A linear model with known weights: its logits are its inputs."""
    model = nn.Linear(size, size)
    with torch.no_grad():
        model.weight.copy_(torch.eye(size))
        model.bias.zero_()
    return model


def _logits_for(predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    return 2.0 * nn.functional.one_hot(predicted, num_classes).float()


def test_evaluation_matches_hand_computed_metrics():
    result = evaluate_classifier(_identity_linear(3), _logits_for(PREDICTED, 3), LABELS, num_classes=3)

    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert result["accuracy"] == pytest.approx(4 / 6)
    # cross-entropy of [2, 0, 0]-style logits: log(e^2 + 2), less 2 where the prediction is right
    assert result["loss"] == pytest.approx(math.log(math.e**2 + 2) - 2 * 4 / 6)
    # per-class F1 = 2tp / (2tp + fp + fn): 2/4, 4/5, 2/3
    assert result["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert result["sample_count"] == 6


def test_macro_f1_skips_classes_absent_from_labels_and_predictions_like_sklearn():
    result = evaluate_classifier(_identity_linear(5), _logits_for(PREDICTED, 5), LABELS, num_classes=5)

    assert result["macro_f1"] == pytest.approx(f1_score(LABELS, PREDICTED, average="macro"))
    assert result["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert len(result["confusion_matrix"]) == 5


def test_evaluation_agrees_with_sklearn_and_torch_on_random_logits():
    logits, labels = torch.randn(300, 7), torch.randint(0, 7, (300,))
    result = evaluate_classifier(nn.Identity(), logits, labels, num_classes=7, batch_size=64)

    predicted = logits.argmax(dim=1)
    assert result["confusion_matrix"] == confusion_matrix(labels, predicted, labels=range(7)).tolist()
    assert result["macro_f1"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert result["accuracy"] == pytest.approx(float((predicted == labels).float().mean()))
    assert result["loss"] == pytest.approx(float(nn.functional.cross_entropy(logits, labels)), rel=1e-5)


def test_evaluation_reports_progress_between_batches_and_keeps_training_mode():
    model = _identity_linear(3).train()
    fractions = []

    evaluate_classifier(
        model, _logits_for(PREDICTED, 3), LABELS, num_classes=3, batch_size=4, progress=fractions.append
    )

    assert fractions == [pytest.approx(4 / 6), 1.0]
    assert model.training


def test_evaluation_refuses_labels_outside_the_classes():
    with pytest.raises(ValueError, match="labels must be from 0 to 2"):
        evaluate_classifier(_identity_linear(3), torch.zeros(2, 3), torch.tensor([0, 3]), num_classes=3)


def test_parameter_counts_count_zeros_apart():
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight[0].zero_()  # 4 of the 12 weights

    assert parameter_counts(model) == (15, 11)
    assert parameter_counts(model.state_dict()) == (15, 11)


def test_parameter_counts_leave_out_batchnorm_statistics():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    model.train()(torch.randn(8, 4))  # running stats now non-zero, num_batches_tracked 1

    assert parameter_counts(model) == (15 + 6, 15 + 3)  # BatchNorm's bias starts at zero


def test_parameter_counts_include_integer_weights():
    state = {"fc.weight": torch.tensor([[0, 3], [-2, 0]], dtype=torch.int8), "fc.scale": torch.tensor([0.5, 0.25])}

    assert parameter_counts(state) == (6, 4)


def test_parameter_counts_see_through_pruning_masks():
    model = nn.Linear(4, 3)
    prune.l1_unstructured(model, "weight", amount=6)  # weight_orig + weight_mask in the state dict

    assert parameter_counts(model) == (15, 9)


def test_flops_of_a_linear_layer_are_two_per_multiply_add():
    assert flops_per_sample(nn.Linear(10, 5), (10,)) == 2 * 10 * 5


def test_flops_of_an_mlp_sum_its_layers():
    model = build_model({"family": "mlp", "hidden_sizes": [8, 6]}, input_shape=(4,), num_classes=3)
    assert flops_per_sample(model, (4,)) == 2 * (4 * 8 + 8 * 6 + 6 * 3)


def test_flops_count_in_eval_mode_and_restore_training():
    model = build_model({"family": "resnet", "depth": 8}, input_shape=(1, 8, 8), num_classes=10).train()
    assert flops_per_sample(model, (1, 8, 8)) > 0
    assert model.training


def test_latency_and_throughput_are_positive_and_finite():
    model = build_model({"family": "mlp", "hidden_sizes": [16]}, input_shape=(8,), num_classes=3)
    cpu = torch.device("cpu")

    latency = latency_per_sample(model, (8,), device=cpu, warmup=1, repeats=5)
    rate = throughput(model, (8,), device="cpu", batch_size=16, warmup=1, repeats=3)

    assert 0 < latency < math.inf
    assert 0 < rate < math.inf


def test_pick_device_falls_back_to_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    assert pick_device() == torch.device("cpu")
    assert pick_device("cuda") == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")


def test_pick_device_takes_cuda_when_present_unless_told_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)

    assert pick_device() == torch.device("cuda")
    assert pick_device("cuda:0") == torch.device("cuda:0")
    assert pick_device("cuda:3") == torch.device("cpu")  # no such GPU here
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "mps"])
def test_pick_device_refuses_other_accelerators(name):
    with pytest.raises(ValueError, match="unsupported device"):
        pick_device(name)


def test_describe_device_names_the_cpu_and_its_threads():
    description = describe_device("cpu")
    assert description.startswith("cpu: ")
    assert description.endswith(f"({torch.get_num_threads()} threads)")


def test_describe_device_names_the_gpu(monkeypatch):
    monkeypatch.setattr(measure.torch.cuda, "get_device_name", lambda device: "NVIDIA H200")
    assert describe_device(torch.device("cuda", 0)) == "cuda: NVIDIA H200"
