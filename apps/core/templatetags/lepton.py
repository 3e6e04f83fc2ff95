"""Template filters for quantities: {{ size|bytes }}, {{ ratio|percent }}."""

from django import template

from apps.core.units import format_bytes

register = template.Library()


@register.filter(name="bytes")
def bytes_filter(value):
    return "" if value is None else format_bytes(value)


@register.filter
def percent(value):
    """0.423 -> 42 (an integer for widths of progress bars)."""
    return 0 if value is None else max(0, min(100, round(float(value) * 100)))


@register.filter
def points(value):
    """0.95833 -> "95.83" (an accuracy in percent, to two decimals)."""
    return "—" if value is None else f"{100 * float(value):.2f}"
