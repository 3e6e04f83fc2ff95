"""A stored version back as a torch module (for evaluation, export, serving)."""

from torch import nn

from apps.core.storage import local_path
from apps.registry.models import ModelVersion
from apps.registry.rebuild import rebuild_module
from apps.registry.weights import load_weights


def version_module(version: ModelVersion, *, computing_as_stored: bool = True) -> nn.Module:
    """The version's module with its stored weights, in eval mode on the CPU (see `rebuild_module`)."""
    if version.status != ModelVersion.Status.READY:
        raise ValueError(f"{version} is {version.status}, not ready")
    return rebuild_module(
        version.spec,
        input_shape=tuple(version.input_shape),
        num_classes=version.num_classes,
        transforms=version.transforms,
        weights=load_weights(local_path(version.artifact)),
        computing_as_stored=computing_as_stored,
    )
