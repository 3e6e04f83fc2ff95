"""What job specs point at, looked up inside the submitting team (the kinds' shared reference checks).

A spec names rows by id and number; these turn them into the rows, or raise the error that
names the spec field at fault ("spec.model: no such model in this team"). Another team's
rows are reported exactly like missing ones.
"""

from apps.core.errors import NotFound
from apps.core.params import Param, invalid
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.selectors import latest_ready_version
from apps.registry.models import Model, ModelVersion

MODEL = Param("model", int, low=1, help="The model (its id).")
DATASET = Param("dataset", int, None, low=1, nullable=True, help="The dataset (its id); default: the model's.")
DATASET_VERSION = Param(
    "dataset_version", int, None, low=1, nullable=True, help="Its version number; default: the latest ready one."
)


def team_model(spec: dict, team) -> Model:
    model = Model.objects.filter(pk=spec["model"], team=team).first()
    if model is None:
        raise NotFound("spec.model: no such model in this team.", fields={"spec.model": ["Not found."]})
    return model


def ready_version(model: Model, number, field: str = "version") -> ModelVersion:
    version = model.versions.filter(number=number, status=ModelVersion.Status.READY).first()
    if version is None:
        raise invalid(f"spec.{field}", f"{model.name} has no ready version {number}")
    return version


def team_dataset(team, dataset_id, field: str = "dataset") -> Dataset:
    dataset = Dataset.objects.filter(pk=dataset_id or 0, team=team).first()
    if dataset is None:
        raise NotFound(f"spec.{field}: no such dataset in this team.", fields={f"spec.{field}": ["Not found."]})
    return dataset


def ready_dataset_version(dataset: Dataset, number, field: str = "dataset_version") -> DatasetVersion:
    """Version `number` of the dataset if it is ready; its latest ready version when `number` is None."""
    if number is None:
        version = latest_ready_version(dataset)
    else:
        version = dataset.versions.filter(number=number, status=DatasetVersion.Status.READY).first()
    if version is None:
        raise invalid(f"spec.{field}", f"{dataset.name} has no such ready version")
    return version


def model_dataset_version(spec: dict, model: Model, *, prefix: str = "") -> DatasetVersion:
    """The dataset version a spec names (`<prefix>dataset`, `<prefix>dataset_version`), the model's by default."""
    dataset = team_dataset(model.team, spec[f"{prefix}dataset"] or model.dataset_id, f"{prefix}dataset")
    return ready_dataset_version(dataset, spec[f"{prefix}dataset_version"], f"{prefix}dataset_version")


def model_version_name(model_id: int, number) -> str:
    """ "iris-mlp v3" (for a job's summary, written once at submit)."""
    name = Model.objects.filter(pk=model_id).values_list("name", flat=True).first() or f"model {model_id}"
    return f"{name} v{number}" if number else name


def dataset_version_name(dataset_id: int, number) -> str:
    name = Dataset.objects.filter(pk=dataset_id).values_list("name", flat=True).first() or f"dataset {dataset_id}"
    return f"{name} v{number}" if number else name
