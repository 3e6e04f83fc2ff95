"""The train form: its fields are the `train` kind's declaration (apps.jobs.kinds.train.TRAIN_PARAMS).

Ranges, defaults, choices and help come from that one declaration, and each field converts
with the same `Param.clean` the service runs, so the page refuses exactly what the API does.
"""

from django import forms

from apps.jobs.kinds.train import TRAIN_PARAMS

FORM_PARAMS = TRAIN_PARAMS.without("model", "dataset", "dataset_version")  # the model is the page's; the
# dataset version is one select below
MAIN_FIELDS = ("dataset_version", "base_version", "epochs", "batch_size", "optimizer", "learning_rate", "schedule")


class TrainForm(forms.Form):
    """Submit a `train` job for a model, from its page."""

    dataset_version = forms.ChoiceField(label="Train on")

    def __init__(self, *args, dataset_versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(FORM_PARAMS.form_fields())
        self.fields["dataset_version"].choices = [
            (f"{v.dataset_id}:{v.number}", f"{v.dataset.name} v{v.number} ({v.sample_count} samples)")
            for v in dataset_versions
        ]

    def main_fields(self):
        return [self[name] for name in MAIN_FIELDS]

    def more_fields(self):
        return [self[name] for name in self.fields if name not in MAIN_FIELDS]

    def spec(self, model_pk: int) -> dict:
        """The job's spec from the cleaned form (the service checks it again, with the same rules)."""
        dataset, number = (int(part) for part in self.cleaned_data["dataset_version"].split(":"))
        params = {param.name: self.cleaned_data[param.name] for param in FORM_PARAMS}
        return {"model": model_pk, "dataset": dataset, "dataset_version": number, **params}
