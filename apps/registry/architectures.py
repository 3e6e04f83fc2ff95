"""The architecture catalog: plain torch classifiers built from a JSON spec such as
`{"family": "resnet", "depth": 20}`.

Adding an architecture is one builder function under `@register_architecture`: its
parameter rules validate specs and describe the family in the catalog (UI and API), so
the two cannot drift apart.

Contracts that later code (pruning, factorization, export) relies on:
- every model has a `features` module and a final `nn.Linear` named `classifier`;
  image models also have `pool` (adaptive average pooling to 1x1) and `hidden` (an
  `nn.Identity` except in cnn_small) between the two;
- module names never depend on parameter values or the input size (a skipped
  downsampling is an `nn.Identity`, dropout of 0 is still an `nn.Dropout`), and the
  parameter shapes of image models do not depend on the input size either;
- the input shape is `(features,)` for tables and `(channels, height, width)` for images;
  store it with the spec, since the same spec builds different layers for other inputs;
- no in-place operations, so ONNX export and FlopCounterMode see plain graphs.
"""

import inspect
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch
from torch import nn

TABULAR = "tabular_classification"
IMAGE = "image_classification"
TASKS = (TABULAR, IMAGE)

INT = "int"
FLOAT = "float"
INT_LIST = "int_list"


class SpecError(ValueError):
    """A spec that cannot be built; `field` names the spec key at fault so forms and the API
    can point at it."""

    def __init__(self, message: str, field: str):
        super().__init__(f"{field}: {message}")
        self.message = message
        self.field = field


@dataclass(frozen=True)
class ParamRule:
    """How one spec parameter is checked and described; list defaults are tuples so no caller
    can change them in place. Bounds follow pydantic's names:
    `ge`/`gt` lower, `le`/`lt` upper (inclusive/exclusive); for INT_LIST they bound each
    item and `min_items`/`max_items` bound the length."""

    kind: str
    default: Any
    description: str
    choices: tuple | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_items: int | None = None
    max_items: int | None = None

    def describe(self) -> dict:
        """The rule as plain JSON for the catalog: unset bounds are left out."""
        bounds = ("choices", "ge", "gt", "le", "lt", "min_items", "max_items")
        described = {"kind": self.kind, "default": self.default, "description": self.description}
        for name in ("default", *bounds):
            value = getattr(self, name)
            if value is not None:
                described[name] = list(value) if isinstance(value, tuple) else value
        return described


@dataclass(frozen=True)
class Architecture:
    """One catalog entry: the builder, the rules for its parameters, the tasks it suits."""

    family: str
    build: Callable[..., nn.Module]
    params: dict[str, ParamRule]
    tasks: frozenset[str]
    description: str = ""


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(family: str, *, params: dict[str, ParamRule], tasks: set[str]):
    """Decorator: `build(input_shape, num_classes, **params)` joins the catalog as `family`;
    the first paragraph of its docstring is the family's description."""
    unknown = set(tasks) - set(TASKS)
    if unknown or not tasks:
        raise ValueError(f"{family}: tasks must be a non-empty subset of {TASKS}; got {sorted(tasks)}")

    def register(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if family in ARCHITECTURES:
            raise ValueError(f"architecture {family!r} is already registered")
        description = " ".join(inspect.cleandoc(build.__doc__ or "").split("\n\n")[0].split())
        ARCHITECTURES[family] = Architecture(family, build, dict(params), frozenset(tasks), description)
        return build

    return register


def catalog() -> list[dict]:
    """Every family with its tasks and parameters (defaults included), as plain JSON."""
    return [
        {
            "family": arch.family,
            "description": arch.description,
            "tasks": sorted(arch.tasks),
            "params": {name: rule.describe() for name, rule in arch.params.items()},
        }
        for arch in ARCHITECTURES.values()
    ]


# --- validation ---------------------------------------------------------------------


def _check_number(value: Any, rule: ParamRule, name: str) -> int | float:
    """One int or float against the rule's type and bounds; ints are accepted for floats."""
    want_int = rule.kind in (INT, INT_LIST)
    numeric = isinstance(value, int) if want_int else isinstance(value, int | float)
    # bool is an int to Python, but `true` for a depth is a mistake, not a 1
    if isinstance(value, bool) or not numeric or (isinstance(value, float) and not math.isfinite(value)):
        raise SpecError(f"must be {'an integer' if want_int else 'a number'}; got {value!r}", name)
    if rule.choices is not None and value not in rule.choices:
        raise SpecError(f"must be one of {', '.join(map(str, rule.choices))}; got {value!r}", name)
    for bound, fails, words in (
        (rule.ge, lambda b: value < b, "at least"),
        (rule.gt, lambda b: value <= b, "greater than"),
        (rule.le, lambda b: value > b, "at most"),
        (rule.lt, lambda b: value >= b, "less than"),
    ):
        if bound is not None and fails(bound):
            raise SpecError(f"must be {words} {bound}; got {value!r}", name)
    return value if want_int else float(value)


def _check_param(value: Any, rule: ParamRule, name: str) -> Any:
    if rule.kind != INT_LIST:
        return _check_number(value, rule, name)
    if not isinstance(value, list | tuple):
        raise SpecError(f"must be a list of integers; got {value!r}", name)
    if rule.min_items is not None and len(value) < rule.min_items:
        raise SpecError(f"must have at least {rule.min_items} item(s); got {len(value)}", name)
    if rule.max_items is not None and len(value) > rule.max_items:
        raise SpecError(f"must have at most {rule.max_items} item(s); got {len(value)}", name)
    return [_check_number(item, rule, name) for item in value]


def _architecture_for(spec: Any, task: str | None) -> Architecture:
    if not isinstance(spec, dict):
        raise SpecError(f"must be an object; got {type(spec).__name__}", "spec")
    family = spec.get("family")
    if not isinstance(family, str) or family not in ARCHITECTURES:
        raise SpecError(f"unknown family {family!r}; choose from {', '.join(ARCHITECTURES)}", "family")
    if task is not None and (not isinstance(task, str) or task not in TASKS):
        raise SpecError(f"unknown task {task!r}; choose from {', '.join(TASKS)}", "task")
    arch = ARCHITECTURES[family]
    if task is not None and task not in arch.tasks:
        raise SpecError(f"{family} does not suit {task}; it is for {', '.join(sorted(arch.tasks))}", "family")
    return arch


def validate_spec(spec: dict, *, task: str | None = None) -> dict:
    """The normalized spec `{"family": ..., **params}` with defaults filled in, or a
    SpecError naming the field at fault. With `task`, the family must suit it too."""
    arch = _architecture_for(spec, task)
    unknown = sorted(set(spec) - {"family"} - set(arch.params), key=str)
    if unknown:
        raise SpecError(f"not a parameter of {arch.family}; it takes {', '.join(arch.params)}", unknown[0])
    normalized = {"family": arch.family}
    for name, rule in arch.params.items():
        normalized[name] = _check_param(spec.get(name, rule.default), rule, name)
    return normalized


def _task_for(input_shape: tuple[int, ...]) -> str:
    shape = tuple(input_shape)
    if len(shape) not in (1, 3) or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
        raise SpecError(
            f"must be (features,) or (channels, height, width) of positive ints; got {shape}", "input_shape"
        )
    return TABULAR if len(shape) == 1 else IMAGE


def build_model(spec: dict, *, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Validate the spec against the input (a table or images) and build the classifier."""
    task = _task_for(input_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise SpecError(f"must be an integer of at least 2; got {num_classes!r}", "num_classes")
    normalized = validate_spec(spec, task=task)
    params = {name: value for name, value in normalized.items() if name != "family"}
    return ARCHITECTURES[normalized["family"]].build(tuple(input_shape), num_classes, **params)


# --- shared pieces ------------------------------------------------------------------


def _downsample(size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """(stride, size after) for a wanted stride-2 step: skipped once the map is 2 pixels or
    less on a side, so one spec fits 8x8 digits and 32x32 photos alike. Stride-2 layers here
    (3x3 pad 1, 1x1 pad 0, 2x2 ceil-mode pooling) all give ceil(n / 2)."""
    if min(size) <= 2:
        return 1, size
    return 2, ((size[0] + 1) // 2, (size[1] + 1) // 2)


def _scaled_width(base: int, multiplier: float, divisor: int = 1) -> int:
    """`base * multiplier` rounded to a multiple of `divisor` (at least one divisor), never
    more than 10% below the scaled value (MobileNet's `_make_divisible`)."""
    scaled = base * multiplier
    width = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return width + divisor if width < 0.9 * scaled else width


class ImageClassifier(nn.Module):
    """features -> global average pool -> hidden (identity unless the family has one) ->
    classifier: the shape every image family shares. Pooling to 1x1 makes the layers after
    it independent of the input size."""

    def __init__(self, features: nn.Module, classifier: nn.Linear, hidden: nn.Module | None = None):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.hidden = hidden if hidden is not None else nn.Identity()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.hidden(torch.flatten(self.pool(self.features(x)), 1)))


# --- mlp ----------------------------------------------------------------------------


def _dense_block(in_features: int, out_features: int, dropout: float) -> nn.Module:
    """Linear-ReLU-Dropout; dropout 0 is kept as a layer so names never depend on it."""
    return nn.Sequential(
        OrderedDict(linear=nn.Linear(in_features, out_features), relu=nn.ReLU(), dropout=nn.Dropout(dropout))
    )


class MLP(nn.Module):
    """Fully connected layers over the flattened input; images are flattened too."""

    def __init__(self, in_features: int, hidden_sizes: list[int], dropout: float, num_classes: int):
        super().__init__()
        widths = [in_features, *hidden_sizes]
        self.features = nn.Sequential(*(_dense_block(n_in, n_out, dropout) for n_in, n_out in pairwise(widths)))
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(torch.flatten(x, 1)))


DROPOUT = ParamRule(FLOAT, 0.0, "dropout probability after each hidden layer", ge=0.0, lt=1.0)


@register_architecture(
    "mlp",
    tasks={TABULAR, IMAGE},
    params={
        "hidden_sizes": ParamRule(
            INT_LIST, (128, 64), "width of each hidden layer", ge=1, le=8192, min_items=1, max_items=16
        ),
        "dropout": DROPOUT,
    },
)
def build_mlp(input_shape: tuple[int, ...], num_classes: int, *, hidden_sizes: list[int], dropout: float) -> nn.Module:
    """Multilayer perceptron: Linear-ReLU-Dropout blocks, then a linear classifier."""
    return MLP(math.prod(input_shape), hidden_sizes, dropout, num_classes)


# --- cnn_small ----------------------------------------------------------------------


def _conv_pool_block(in_channels: int, out_channels: int, size: tuple[int, int]) -> tuple[nn.Module, tuple[int, int]]:
    stride, size = _downsample(size)
    pool = nn.MaxPool2d(2, ceil_mode=True) if stride == 2 else nn.Identity()
    layers = OrderedDict(conv=nn.Conv2d(in_channels, out_channels, 5, padding=2), relu=nn.ReLU(), pool=pool)
    return nn.Sequential(layers), size


@register_architecture(
    "cnn_small",
    tasks={IMAGE},
    params={
        "channels": ParamRule(
            INT_LIST, (16, 32), "output channels of the two conv layers", ge=1, le=1024, min_items=2, max_items=2
        ),
        "hidden": ParamRule(INT, 64, "width of the hidden fully connected layer", ge=1, le=8192),
        "dropout": DROPOUT,
    },
)
def build_cnn_small(
    input_shape: tuple[int, ...], num_classes: int, *, channels: list[int], hidden: int, dropout: float
) -> nn.Module:
    """LeNet-style: two 5x5 conv + max-pool blocks, one hidden layer, a linear classifier."""
    size = input_shape[1:]
    first, size = _conv_pool_block(input_shape[0], channels[0], size)
    second, size = _conv_pool_block(channels[0], channels[1], size)
    hidden_layer = _dense_block(channels[1], hidden, dropout)
    return ImageClassifier(nn.Sequential(first, second), nn.Linear(hidden, num_classes), hidden=hidden_layer)


# --- resnet -------------------------------------------------------------------------


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> OrderedDict:
    """Conv (no bias: the BatchNorm after it has one) + BatchNorm, as named layers."""
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False)
    return OrderedDict(conv=conv, bn=nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut. Where the shape changes the shortcut is a 1x1
    conv-BN projection (the paper's option B): its CIFAR nets pad zeros instead (option A),
    but a projection keeps every layer an ordinary conv that pruning can handle."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        reshapes = stride != 1 or in_channels != out_channels
        self.shortcut = nn.Sequential(_conv_bn(in_channels, out_channels, 1, stride)) if reshapes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


WIDTH_MULTIPLIER = ParamRule(FLOAT, 1.0, "scales every layer's channel count", gt=0.0, le=4.0)


@register_architecture(
    "resnet",
    tasks={IMAGE},
    params={
        "depth": ParamRule(INT, 20, "layers with weights: 6n+2 for n blocks per stage", choices=(8, 20, 56)),
        "width_multiplier": WIDTH_MULTIPLIER,
    },
)
def build_resnet(input_shape: tuple[int, ...], num_classes: int, *, depth: int, width_multiplier: float) -> nn.Module:
    """CIFAR ResNet (He et al. 2016): a 3x3 stem, three stages of BasicBlocks at 16/32/64
    channels, global pooling, a linear classifier."""
    blocks_per_stage = (depth - 2) // 6
    widths = [max(1, round(base * width_multiplier)) for base in (16, 32, 64)]
    stem = nn.Sequential(OrderedDict(**_conv_bn(input_shape[0], widths[0], 3), relu=nn.ReLU()))
    layers, size, in_channels = OrderedDict(stem=stem), input_shape[1:], widths[0]
    for index, width in enumerate(widths):
        stride, size = _downsample(size) if index > 0 else (1, size)
        layers[f"stage{index + 1}"] = _resnet_stage(in_channels, width, blocks_per_stage, stride)
        in_channels = width
    return ImageClassifier(nn.Sequential(layers), nn.Linear(in_channels, num_classes))


def _resnet_stage(in_channels: int, width: int, blocks: int, stride: int) -> nn.Module:
    """`blocks` BasicBlocks; only the first changes the width or the resolution."""
    first = BasicBlock(in_channels, width, stride)
    return nn.Sequential(first, *(BasicBlock(width, width, 1) for _ in range(blocks - 1)))


# --- mobilenet_v2 -------------------------------------------------------------------

# (expansion t, channels c, blocks n, stride s) from Sandler et al. 2018, table 2. As in
# CIFAR ports, the stem and the second stage keep stride 1, leaving three stride-2 stages.
MOBILENET_V2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _conv_bn_relu6(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Module:
    return nn.Sequential(OrderedDict(**_conv_bn(in_channels, out_channels, kernel, stride, groups), relu=nn.ReLU6()))


class InvertedResidual(nn.Module):
    """1x1 expansion (skipped at t=1), 3x3 depthwise conv, linear 1x1 projection; the input
    is added back when the shape is unchanged."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.expand = _conv_bn_relu6(in_channels, hidden, 1) if expansion != 1 else nn.Identity()
        self.depthwise = _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden)
        self.project = nn.Sequential(_conv_bn(hidden, out_channels, 1))
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


@register_architecture("mobilenet_v2", tasks={IMAGE}, params={"width_multiplier": WIDTH_MULTIPLIER})
def build_mobilenet_v2(input_shape: tuple[int, ...], num_classes: int, *, width_multiplier: float) -> nn.Module:
    """MobileNetV2 for small images: inverted residual blocks with a stride-1 stem."""
    stem_channels = in_channels = _scaled_width(32, width_multiplier, 8)
    last_channels = _scaled_width(1280, max(1.0, width_multiplier), 8)
    size, blocks = input_shape[1:], []
    for expansion, channels, repeats, wanted_stride in MOBILENET_V2_STAGES:
        out_channels = _scaled_width(channels, width_multiplier, 8)
        stride, size = _downsample(size) if wanted_stride == 2 else (1, size)
        for block in range(repeats):
            blocks.append(InvertedResidual(in_channels, out_channels, stride if block == 0 else 1, expansion))
            in_channels = out_channels
    features = OrderedDict(
        stem=_conv_bn_relu6(input_shape[0], stem_channels, 3),
        blocks=nn.Sequential(*blocks),
        head=_conv_bn_relu6(in_channels, last_channels, 1),
    )
    return ImageClassifier(nn.Sequential(features), nn.Linear(last_channels, num_classes))
