"""Forms of the registry pages (shape only; services decide)."""

import json

from django import forms

from apps.datasets.models import Task
from apps.registry.architectures import catalog


def _family_choices():
    return [(a["family"], f"{a['family']} — {a['description']}") for a in catalog()]


class ModelCreateForm(forms.Form):
    name = forms.CharField(max_length=100)
    task = forms.ChoiceField(choices=Task.choices)
    dataset = forms.TypedChoiceField(
        coerce=int,
        required=False,
        empty_value=None,
        help_text="The dataset it is made for (sets the input shape and classes).",
    )
    family = forms.ChoiceField(choices=_family_choices, label="Architecture")
    params = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}),
        label="Architecture parameters (JSON)",
        help_text='e.g. {"hidden_sizes": [64, 32]}; blank for the defaults.',
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, datasets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [
            ("", "none yet"),
            *[(d.pk, f"{d.name} ({d.get_task_display()})") for d in datasets],
        ]

    def clean_params(self):
        raw = (self.cleaned_data.get("params") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"not valid JSON ({error.msg})") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("must be a JSON object")
        return value

    def architecture(self) -> dict:
        return {"family": self.cleaned_data["family"], **self.cleaned_data["params"]}


class DatasetVersionChoiceMixin:
    """A select of ready dataset versions of the team, as "<dataset id>:<number>"."""

    def set_dataset_versions(self, dataset_versions):
        self.fields["dataset_version"].choices = [
            (f"{v.dataset_id}:{v.number}", f"{v.dataset.name} v{v.number} ({v.sample_count} samples)")
            for v in dataset_versions
        ]

    def chosen_dataset_version(self) -> tuple[int, int]:
        dataset, number = self.cleaned_data["dataset_version"].split(":")
        return int(dataset), int(number)


class VersionUploadForm(DatasetVersionChoiceMixin, forms.Form):
    file = forms.FileField(help_text=".safetensors, or a PyTorch state dict (.pt/.pth) — opened only by a worker.")
    dataset_version = forms.ChoiceField(label="Dataset it was trained on")
    label = forms.CharField(max_length=100, required=False)


class EvaluateForm(DatasetVersionChoiceMixin, forms.Form):
    dataset_version = forms.ChoiceField(label="Evaluate on")


class AliasForm(forms.Form):
    name = forms.SlugField(max_length=50, initial="production")
    version = forms.IntegerField(min_value=1)
