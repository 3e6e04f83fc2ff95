"""The experiment form: recipes built from sweeps and checkboxes, never typed as JSON."""

from django import forms

from apps.experiments.compression.quantize import SCHEMES
from apps.experiments.models import Objective, Strategy
from apps.experiments.sweeps import SweepError, grid_from_sweeps, parse_numbers, parse_students


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=100)
    base_version = forms.ChoiceField(label="Model version to compress")
    dataset_version = forms.ChoiceField(label="Fine-tune on")
    eval_dataset_version = forms.ChoiceField(label="Measure on", required=False)
    max_accuracy_drop = forms.FloatField(
        initial=1.0, min_value=0, max_value=100, label="Allowed accuracy drop (points)"
    )
    objective = forms.ChoiceField(choices=Objective.choices, initial=Objective.SIZE)
    strategy = forms.ChoiceField(choices=Strategy.choices, initial=Strategy.AUTO, widget=forms.RadioSelect)
    budget = forms.IntegerField(initial=20, min_value=1, max_value=200, label="Trial budget")
    finetune_epochs = forms.IntegerField(initial=3, min_value=0, max_value=200, label="Fine-tuning epochs per step")
    learning_rate = forms.FloatField(initial=5e-4, min_value=1e-7, max_value=1, label="Fine-tuning learning rate")
    # the grid, as sweeps
    schemes = forms.MultipleChoiceField(
        choices=[(s, s) for s in SCHEMES], required=False, widget=forms.CheckboxSelectMultiple, label="Quantization"
    )
    sparsities = forms.CharField(required=False, label="Unstructured sparsities", help_text="e.g. 0.5, 0.8, 0.9, 0.95")
    ratios = forms.CharField(required=False, label="Structured channel ratios", help_text="e.g. 0.25, 0.5, 0.75")
    ranks = forms.CharField(required=False, label="Low-rank ratios", help_text="e.g. 0.5, 0.25")
    students = forms.CharField(
        required=False, label="Distil into MLP students", help_text="hidden sizes, one student per ';': 64; 32, 16"
    )
    then_int8 = forms.BooleanField(required=False, label="Also try each of these followed by int8 (pipelines)")

    def __init__(self, *args, versions=(), dataset_versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base_version"].choices = [
            (f"{v.model_id}:{v.number}", f"{v.model.name} v{v.number}{' · ' + v.label if v.label else ''}")
            for v in versions
        ]
        choices = [(f"{v.dataset_id}:{v.number}", f"{v.dataset.name} v{v.number}") for v in dataset_versions]
        self.fields["dataset_version"].choices = choices
        self.fields["eval_dataset_version"].choices = [("", "the same"), *choices]

    @staticmethod
    def pair(value: str) -> tuple[int, int] | None:
        if not value:
            return None
        first, second = value.split(":")
        return int(first), int(second)

    def clean(self):
        data = super().clean()
        if data.get("strategy") != Strategy.GRID:
            data["recipes"] = []
            return data
        try:
            data["recipes"] = grid_from_sweeps(
                schemes=data.get("schemes") or [],
                sparsities=parse_numbers(data.get("sparsities"), "sparsities", low=0.01, high=0.995),
                ratios=parse_numbers(data.get("ratios"), "ratios", low=0.05, high=0.95),
                ranks=parse_numbers(data.get("ranks"), "ranks", low=0.01, high=1.0),
                students=parse_students(data.get("students"), "students"),
                then_int8=bool(data.get("then_int8")),
            )
        except SweepError as error:
            self.add_error(error.field, error.message)
            return data
        if not data["recipes"]:
            self.add_error("schemes", "a grid needs at least one method: tick a scheme or give values to sweep")
        return data
