"""The experiment form: recipes built from sweeps and checkboxes, never typed as JSON."""

from django import forms

from apps.experiments.compression.quantize import SCHEMES
from apps.experiments.compression.steps import step_param
from apps.experiments.models import Strategy
from apps.experiments.services import EXPERIMENT_PARAMS
from apps.experiments.sweeps import SweepError, grid_from_sweeps, parse_numbers, parse_students

FORM_SETTINGS = EXPERIMENT_PARAMS.without("seed")  # the page keeps the default seed; the API can set it


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=100)
    base_version = forms.ChoiceField(label="Model version to compress")
    dataset_version = forms.ChoiceField(label="Fine-tune on")
    eval_dataset_version = forms.ChoiceField(label="Measure on", required=False)
    # the settings (drop, objective, strategy, budget, fine-tuning) come from EXPERIMENT_PARAMS in __init__
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
        self.fields.update(FORM_SETTINGS.form_fields())
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
                sparsities=parse_numbers(data.get("sparsities"), "sparsities", rule=step_param("prune", "sparsity")),
                ratios=parse_numbers(data.get("ratios"), "ratios", rule=step_param("structured_prune", "ratio")),
                ranks=parse_numbers(data.get("ranks"), "ranks", rule=step_param("low_rank", "rank_ratio")),
                students=parse_students(data.get("students"), "students"),
                then_int8=bool(data.get("then_int8")),
            )
        except SweepError as error:
            self.add_error(error.field, error.message)
            return data
        if not data["recipes"]:
            self.add_error("schemes", "a grid needs at least one method: tick a scheme or give values to sweep")
        return data
