"""Importing this module registers how the registry re-applies each compression transform.

The experiments app imports it in `ready()`; plain processes that rebuild compressed
versions import it themselves. The rebuilders are declared with their steps in the step
table (`steps.py`), which registers them as it is filled:
- structure phase, before the weights load: `resize` (structured pruning: layers re-made
  at their stored shapes), `low_rank` (layers replaced by their factor pairs);
- weights phase, after: `quantize` (re-quantized so the module computes what was saved);
- `prune` and `distill` change no structure (the zeros and the student's spec are stored).
"""

from apps.experiments.compression import steps  # noqa: F401 (filling the step table registers the transforms)
