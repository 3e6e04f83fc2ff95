"""Template filters for quantities: {{ size|bytes }}, {{ ratio|percent }}, {{ duration|seconds }}."""

from django import template

from apps.core.units import format_bytes

register = template.Library()


@register.filter(name="bytes")
def bytes_filter(value):
    return "" if value is None else format_bytes(value)


@register.filter
def percent(value):
    """0.423 -> 42 (an integer for widths of progress bars)."""
    return 0 if value in (None, "") else max(0, min(100, round(float(value) * 100)))


@register.filter
def points(value):
    """0.95833 -> "95.83" (an accuracy in percent, to two decimals)."""
    return "—" if value is None else f"{100 * float(value):.2f}"


@register.filter
def seconds(value):
    """3.42 -> "3.4 s", 312 -> "5 min 12 s", 7300 -> "2 h 1 min" (a duration people read)."""
    if value is None:
        return ""
    value = float(value)
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


WORK_VERBS = {
    "ingest": "ingested",
    "import": "imported",
    "train": "trained",
    "evaluate": "measured",
    "compress": "compressed",
    "export": "exported",
}


@register.filter
def made_by(kind):
    """A job kind as the verb of what its job did to a row: "ingest" -> "ingested"."""
    return WORK_VERBS.get(kind, "made")


@register.filter
def control(field):
    """A bound field's widget with Bootstrap's class (and is-invalid when it has errors): one look for every form.

    The widget keeps what the form field says about itself (min, max, step, required), so the
    limits a page shows are the ones its declaration checks.
    """
    checkbox = getattr(field.field.widget, "input_type", "") == "checkbox"
    css = "form-check-input" if checkbox else "form-control"
    if field.errors:
        css += " is-invalid"
    return field.as_widget(attrs={"class": css})
