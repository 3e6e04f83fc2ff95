"""What every reader hands to the pipeline: features (in chunks) and raw labels."""

from dataclasses import dataclass, field

import numpy as np

TABULAR, IMAGE = "tabular", "image"


@dataclass
class SourceData:
    """A parsed source. `chunks` split the samples along axis 0 (float32 rows or uint8 CHW images)."""

    kind: str
    chunks: list[np.ndarray]
    labels: np.ndarray
    sample_shape: tuple[int, ...]
    feature_names: list[str] | None = None
    class_names: list[str] | None = None  # set when `labels` are already indices into these names
    notes: list[str] = field(default_factory=list)

    @property
    def sample_count(self) -> int:
        return int(sum(len(chunk) for chunk in self.chunks))
