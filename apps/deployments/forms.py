"""Forms of the deployment pages (shape only; services decide)."""

from django import forms

from apps.deployments.serving import InputError


def target_choices(versions, aliases) -> list[tuple[str, str]]:
    """Choices "v:<model>:<number>" for ready versions and "a:<model>:<alias>" for aliases."""
    choices = [
        (f"a:{a.model_id}:{a.name}", f"{a.model.name}@{a.name} (follows it; now v{a.version.number})") for a in aliases
    ]
    choices += [
        (f"v:{v.model_id}:{v.number}", f"{v.model.name} v{v.number}{' — ' + v.label if v.label else ''}")
        for v in versions
    ]
    return choices


class TargetMixin:
    def set_targets(self, versions, aliases):
        self.fields["target"].choices = target_choices(versions, aliases)

    def chosen_target(self) -> tuple[str, int, str]:
        """("version", model id, "3") or ("alias", model id, "production")."""
        kind, model, value = self.cleaned_data["target"].split(":", 2)
        return ("alias" if kind == "a" else "version"), int(model), value


class DeploymentCreateForm(TargetMixin, forms.Form):
    name = forms.CharField(max_length=100)
    target = forms.ChoiceField(
        label="Serve", help_text="A version as it is, or an alias: moving it switches the deployment."
    )


class DeploymentTargetForm(TargetMixin, forms.Form):
    target = forms.ChoiceField(label="Serve")


class KeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, initial="production client")


def parse_feature_rows(text: str) -> list[list[float]]:
    """One sample per line, values separated by commas or spaces; `InputError` naming the line and value."""
    rows = []
    for number, line in enumerate((text or "").strip().splitlines(), start=1):
        values = line.replace(",", " ").split()
        if not values:
            continue
        row = []
        for value in values:
            try:
                row.append(float(value))
            except ValueError:
                raise InputError("features", f"line {number}: '{value[:20]}' is not a number") from None
        rows.append(row)
    if not rows:
        raise InputError("features", "enter at least one line of feature values")
    return rows
