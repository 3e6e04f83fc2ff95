"""Limits that keep a hostile or broken upload from exhausting memory or disk."""

from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class IngestLimits:
    zip_max_entries: int = 200_000
    zip_max_total_bytes: int = 4 * GIB  # bytes actually decompressed, all entries together
    zip_max_entry_bytes: int = 64 * MIB  # one image or one .npy member
    zip_max_ratio: float = 200.0  # uncompressed / compressed, per entry
    image_max_pixels: int = 4096 * 4096
    max_columns: int = 100_000
    max_samples: int = 20_000_000
    max_features_total: int = 500_000_000  # samples x features of the output tensor


DEFAULT_LIMITS = IngestLimits()
