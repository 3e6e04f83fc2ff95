"""Forms of the dataset pages: shape only; services and validate_options decide the rest."""

from django import forms

from apps.datasets.ingest.bundled import BUNDLED_SETS
from apps.datasets.models import SourceFormat, Task

SOURCE_CHOICES = [("upload", "Upload a file"), ("bundled", "Bundled dataset")]
BUNDLED_CHOICES = [(name, f"{name} — {s.description}") for name, s in BUNDLED_SETS.items()]


class VersionSourceForm(forms.Form):
    """Where a version comes from: an uploaded file with its options, or a bundled set."""

    source = forms.ChoiceField(choices=SOURCE_CHOICES, initial="upload", widget=forms.RadioSelect)
    file = forms.FileField(
        required=False, help_text="CSV (header row), NPZ (arrays X and y) or a zip of <class>/<image> folders."
    )
    format = forms.ChoiceField(choices=[("", "from the file name"), *SourceFormat.choices[:3]], required=False)
    label_column = forms.CharField(required=False, help_text="CSV: the label column (default: the last).")
    height = forms.IntegerField(
        required=False, min_value=1, max_value=1024, help_text="Images: default from the images."
    )
    width = forms.IntegerField(required=False, min_value=1, max_value=1024)
    channels = forms.TypedChoiceField(
        choices=[("", "from the images"), (1, "1 (grayscale)"), (3, "3 (RGB)")],
        coerce=int,
        empty_value=None,
        required=False,
    )
    bundled = forms.ChoiceField(choices=BUNDLED_CHOICES, required=False)
    samples = forms.IntegerField(required=False, min_value=10, help_text="Synthetic only.")
    features = forms.IntegerField(required=False, min_value=2)
    classes = forms.IntegerField(required=False, min_value=2)
    seed = forms.IntegerField(required=False, min_value=0, initial=0, help_text="Seed of the train/val/test split.")

    def clean(self):
        data = super().clean()
        if data.get("source") == "upload" and not data.get("file"):
            self.add_error("file", "Choose a file to upload.")
        return data

    def synthetic_params(self) -> dict:
        names = ("samples", "features", "classes")
        return {name: self.cleaned_data[name] for name in names if self.cleaned_data.get(name) is not None}

    def upload_options(self) -> dict:
        names = ("label_column", "height", "width", "channels", "seed")
        return {name: self.cleaned_data.get(name) for name in names}


class DatasetCreateForm(VersionSourceForm):
    name = forms.CharField(max_length=100)
    task = forms.ChoiceField(choices=Task.choices)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    field_order = ["name", "task", "description"]
