"""Dataset ingest as plain numpy/torch code (no Django): read a source, check it, write one tensor file."""
