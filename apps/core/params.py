"""Parameters declared once; the service's checks, the API serializer, the HTML form and the schema follow.

A job kind (or any service taking settings) declares its parameters as a `Params` of `Param`s:

    TRAIN = Params(Param("epochs", int, 10, low=1, high=1000, help="Passes over the train split."), ...)

`TRAIN.clean(spec, prefix="spec")` is what the service runs; `TRAIN.serializer(...)` and
`TRAIN.form_fields(...)` build DRF and Django fields whose conversion *is* `Param.clean`, so the
API and the page refuse exactly the same inputs with the same message (the form only turns its
text into a value first); `TRAIN.describe()` is the machine-readable form the API publishes
for the SDK and CLI. Ranges, defaults and help texts therefore stand in one place.
"""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from rest_framework import serializers

from apps.core.errors import ApplicationError

REQUIRED = object()  # a Param default meaning "must be given"
TYPE_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "list", dict: "object"}


class ParamError(ValueError):
    """A value a Param refuses; `where` is the path below the parameter (e.g. ".0.sparsity") or ""."""

    def __init__(self, message: str, where: str = ""):
        super().__init__(message)
        self.message, self.where = message, where


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default (or REQUIRED), range or choices, and words for people."""

    name: str
    kind: type
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    help: str = ""
    label: str = ""
    nullable: bool = False  # None is a valid value (for example "latest" or "no limit")
    max_length: int | None = None
    check: Callable[[Any], Any] | None = field(default=None, compare=False)  # deeper checks (raise ParamError)
    labels: dict | None = field(default=None, compare=False)  # choice -> words for people (TextChoices' labels)

    @classmethod
    def of_choices(cls, name: str, choices, default, **options) -> "Param":
        """A choice among a Django TextChoices, with its labels: Param.of_choices("objective", Objective, "size")."""
        return cls(name, str, default, choices=tuple(choices.values), labels=dict(choices.choices), **options)

    def choice_pairs(self) -> list[tuple]:
        return [(choice, (self.labels or {}).get(choice, str(choice))) for choice in self.choices]

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def clean(self, value: Any) -> Any:
        """The value checked and converted to its type, or ParamError saying what is wrong.

        None means "the default" for an optional parameter (as a blank form field does).
        """
        if value is None and (self.nullable or not self.required):
            return None if self.nullable else self.default
        if self.choices:
            if value not in self.choices:
                raise ParamError(f"must be one of {', '.join(str(c) for c in self.choices)}; got {value!r}")
            return value
        value = self._typed(value)
        if self.kind in (int, float):
            self._in_range(value)
        if self.kind is str and self.max_length is not None and len(value) > self.max_length:
            raise ParamError(f"must be at most {self.max_length} characters")
        return self.check(value) if self.check else value

    def _typed(self, value: Any) -> Any:
        if self.kind in (int, float):
            number = not isinstance(value, bool) and isinstance(value, int | float)
            if not number or (self.kind is int and not float(value).is_integer()):
                raise ParamError(f"must be {'an integer' if self.kind is int else 'a number'}; got {value!r}")
            if not math.isfinite(value):
                raise ParamError(f"must be a finite number; got {value!r}")
            return self.kind(value)
        if not isinstance(value, self.kind) or (self.kind is not bool and isinstance(value, bool)):
            raise ParamError(f"must be a {TYPE_NAMES.get(self.kind, self.kind.__name__)}; got {value!r}")
        return value

    def _in_range(self, value: float) -> None:
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            if self.high is None:
                raise ParamError(f"must be at least {self.low:g}; got {value:g}")
            if self.low is None:
                raise ParamError(f"must be at most {self.high:g}; got {value:g}")
            raise ParamError(f"must be from {self.low:g} to {self.high:g}; got {value:g}")

    def from_text(self, text: str) -> Any:
        """What a form's text means, before `clean`: numbers parsed, blank as the empty value."""
        text = (text or "").strip()
        if not text:
            return None if self.nullable or not self.required else ""
        if self.choices:
            return next((choice for choice in self.choices if str(choice) == text), text)
        if self.kind in (int, float):
            try:
                number = float(text)
            except ValueError:
                return text  # clean() says it is not a number
            return int(number) if self.kind is int and number.is_integer() else number
        if self.kind is bool:
            return text.lower() in ("1", "true", "on", "yes")
        return text

    def describe(self) -> dict:
        """The declaration as JSON, for the API (the SDK and CLI show it)."""
        described = {"name": self.name, "type": TYPE_NAMES.get(self.kind, "any"), "required": self.required}
        if not self.required:
            described["default"] = self.default
        for key in ("low", "high", "help", "max_length"):
            if getattr(self, key) not in (None, ""):
                described[{"low": "minimum", "high": "maximum"}.get(key, key)] = getattr(self, key)
        if self.choices:
            described["choices"] = list(self.choices)
        if self.nullable:
            described["nullable"] = True
        return described


class Params:
    """An ordered set of Params: clean a dict with them, or derive serializers and form fields."""

    def __init__(self, *params: Param):
        self.by_name = {param.name: param for param in params}

    def __iter__(self):
        return iter(self.by_name.values())

    def __getitem__(self, name: str) -> Param:
        return self.by_name[name]

    def __add__(self, other: "Params") -> "Params":
        return Params(*self, *other)

    def only(self, *names: str) -> "Params":
        return Params(*(self.by_name[name] for name in names))

    def without(self, *names: str) -> "Params":
        return Params(*(param for param in self if param.name not in names))

    def defaults(self) -> dict:
        return {param.name: param.default for param in self if not param.required}

    def clean(self, data: dict, *, prefix: str = "", allow_unknown: Iterable[str] = ()) -> dict:
        """Every declared parameter checked (defaults filled in); unknown names refused.

        Raises ApplicationError naming the first field at fault, e.g. "spec.epochs: must be from 1 to 1000".
        """
        if not isinstance(data, dict):
            raise invalid(prefix.rstrip(".") or "body", "must be an object")
        unknown = sorted(set(data) - set(self.by_name) - set(allow_unknown))
        if unknown:
            raise invalid(f"{prefix}{unknown[0]}", "is not a parameter here; known: " + ", ".join(self.by_name))
        clean = {}
        for param in self:
            if param.name not in data:
                if param.required:
                    raise invalid(f"{prefix}{param.name}", "is required")
                clean[param.name] = param.default
                continue
            try:
                clean[param.name] = param.clean(data[param.name])
            except ParamError as error:
                raise invalid(f"{prefix}{param.name}{error.where}", error.message) from None
        return clean

    def describe(self) -> list[dict]:
        return [param.describe() for param in self]

    def serializer(self, name: str, *, optional: Iterable[str] = ()) -> type[serializers.Serializer]:
        """A DRF serializer whose fields convert with `Param.clean` (and document range and default)."""
        optional = set(optional)
        fields = {param.name: serializer_field(param, force_optional=param.name in optional) for param in self}
        return type(name, (serializers.Serializer,), fields)

    def form_fields(self, *, initial: dict | None = None) -> dict[str, forms.Field]:
        """Django form fields whose conversion is `Param.from_text` then `Param.clean`."""
        initial = initial or {}
        return {param.name: form_field(param, initial.get(param.name)) for param in self}


def invalid(field: str, message: str) -> ApplicationError:
    """The one error a bad parameter raises: "field: message", with the field named for scripts."""
    return ApplicationError(f"{field}: {message}", fields={field: [message]})


# --- the derived fields ------------------------------------------------------------------------------------


def _serializer_class(param: Param) -> type[serializers.Field]:
    if param.choices:
        return serializers.ChoiceField
    return {
        int: serializers.IntegerField,
        float: serializers.FloatField,
        str: serializers.CharField,
        bool: serializers.BooleanField,
    }.get(param.kind, serializers.JSONField)


def serializer_field(param: Param, *, force_optional: bool = False) -> serializers.Field:
    """A DRF field of the Param's type (so the OpenAPI schema shows it) that converts with `Param.clean`."""
    base = _serializer_class(param)

    class ParamSerializerField(base):
        def run_validation(self, data=serializers.empty):
            if data is None and not param.required and not param.nullable:
                return param.default  # null: the default, as a blank form field means
            return super().run_validation(data)

        def to_internal_value(self, data):
            try:
                return param.clean(data)
            except ParamError as error:
                raise serializers.ValidationError(error.message) from None

    options = {"help_text": param.help or None, "allow_null": param.nullable or not param.required}
    if param.required and not force_optional:
        options["required"] = True
    elif not param.required:
        options["default"] = param.default
    else:
        options["required"] = False
    if param.choices:
        options["choices"] = param.choice_pairs()
    elif param.kind in (int, float):
        options.update(min_value=param.low, max_value=param.high)
    elif param.kind is str:
        options.update(max_length=param.max_length, allow_blank=True)
    return ParamSerializerField(**options)


def _form_class(param: Param) -> type[forms.Field]:
    if param.choices:
        return forms.ChoiceField
    return {int: forms.IntegerField, float: forms.FloatField, bool: forms.BooleanField}.get(param.kind, forms.CharField)


def form_field(param: Param, initial=None) -> forms.Field:
    """A Django form field of the Param's widget type whose conversion is `from_text` then `clean`."""
    base = _form_class(param)

    class ParamFormField(base):
        def to_python(self, value):
            value = param.from_text(value if isinstance(value, str) else "" if value is None else str(value))
            if value is None or value == "":
                return None if param.nullable or not param.required else value
            try:
                return param.clean(value)
            except ParamError as error:
                raise forms.ValidationError(error.message) from None

        def validate(self, value):
            if self.required and value in (None, ""):
                raise forms.ValidationError(self.error_messages["required"], code="required")

        def clean(self, value):
            value = super().clean(value)
            return param.default if value is None and not param.required and not param.nullable else value

    options = {
        "required": param.required and param.kind is not bool,
        "help_text": param.help,
        "label": param.label or param.name.replace("_", " ").capitalize(),
        "initial": initial if initial is not None else (None if param.required else param.default),
    }
    if param.choices:
        options["choices"] = param.choice_pairs()
        if param.nullable or not param.required:
            options["required"] = False
    elif param.kind in (int, float):
        options.update(min_value=param.low, max_value=param.high)
        if param.kind is float:
            options["widget"] = forms.NumberInput(attrs={"step": "any"})
    return ParamFormField(**options)
