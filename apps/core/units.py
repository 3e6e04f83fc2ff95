"""Human-readable quantities, shared by pages, the admin and error messages."""

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(count: int | float) -> str:
    """1536 -> "1.5 KiB"; whole bytes below 1 KiB, one decimal above."""
    value = float(count)
    for unit in _BYTE_UNITS:
        if abs(value) < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_number(value: int | float) -> str:
    """Whole numbers as is; fractions to one decimal (3 -> "3", 3.25 -> "3.2")."""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
