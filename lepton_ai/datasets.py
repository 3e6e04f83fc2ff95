"""Datasets: list, get, create, and upload a file as a new version (waiting until it is ingested)."""

from pathlib import Path

from lepton_ai.base import Collection, Resource, poll
from lepton_ai.errors import WorkFailed

TASK_BY_SUFFIX = {".zip": "image_classification", ".csv": "tabular_classification", ".npz": "tabular_classification"}
UPLOAD_OPTIONS = ("format", "label_column", "height", "width", "channels", "seed")


class DatasetVersion(Resource):
    """One immutable version of a dataset (status processing → ready | failed)."""

    def __init__(self, client, data: dict, dataset_id: int):
        super().__init__(client, data)
        self.dataset_id = dataset_id

    @property
    def url(self) -> str:
        return f"/api/v1/datasets/{self.dataset_id}/versions/{self.data['number']}/"

    def wait(self, *, progress=False, timeout: float | None = None, interval: float = 0.5) -> "DatasetVersion":
        """Until ingest finishes; `WorkFailed` with the server's message when it failed."""
        poll(
            self,
            done=lambda v: v.status != "processing",
            progress=progress,
            fraction=lambda v: v.progress,
            text=lambda v: v.progress_message or v.status,
            timeout=timeout,
            interval=interval,
            label=f"dataset {self.dataset_id} v{self.number}",
        )
        if self.status == "failed":
            raise WorkFailed(f"dataset version {self.number} failed: {self.error}", resource=self)
        return self


class Dataset(Resource):
    """A dataset of a team: `versions()`, `version(n)`, `upload(path)`."""

    @property
    def url(self) -> str:
        return f"/api/v1/datasets/{self.data['id']}/"

    def versions(self) -> list[DatasetVersion]:
        return [DatasetVersion(self._client, v, self.id) for v in self._client.http.pages(f"{self.url}versions/")]

    def version(self, number: int | None = None) -> DatasetVersion:
        """Version `number`, or the latest one."""
        number = number or self.refresh().latest_version
        return DatasetVersion(self._client, self._client.http.get(f"{self.url}versions/{int(number)}/"), self.id)

    def upload(self, path, *, wait: bool = True, progress=False, timeout: float | None = None, **options):
        """Upload a CSV, NPZ or image-folder zip as a new version (options: label_column, height, width, …)."""
        unknown = set(options) - set(UPLOAD_OPTIONS)
        if unknown:
            raise TypeError(f"unknown upload options {sorted(unknown)}; use {', '.join(UPLOAD_OPTIONS)}")
        path = Path(path)
        with path.open("rb") as handle:
            data = self._client.http.post(
                f"{self.url}versions/",
                files={"file": (path.name, handle)},
                data={k: v for k, v in options.items() if v is not None},
                timeout=None,
            )
        version = DatasetVersion(self._client, data, self.id)
        return version.wait(progress=progress, timeout=timeout) if wait else version

    def add_bundled(self, bundled: str, *, params: dict | None = None, wait: bool = True, timeout=None):
        """A new version from a bundled set (digits, wine, breast_cancer, iris, synthetic)."""
        body = {"bundled": bundled, **({"params": params} if params else {})}
        version = DatasetVersion(self._client, self._client.http.post(f"{self.url}versions/", json=body), self.id)
        return version.wait(timeout=timeout) if wait else version

    def delete(self) -> None:
        self._client.http.delete(self.url)


class Datasets(Collection):
    """client.datasets: list(team=, task=, name=), get(id or name), create(...), upload(...)."""

    path = "/api/v1/datasets/"
    named = True
    kind = "dataset"
    resource = Dataset

    def create(self, name: str, *, task: str, team: str | None = None, description: str = "") -> Dataset:
        body = {"team": team or self._client.team, "name": name, "task": task, "description": description}
        return Dataset(self._client, self._client.http.post(self.path, json=body))

    def upload(
        self,
        name: str,
        path,
        *,
        task: str | None = None,
        team: str | None = None,
        wait: bool = True,
        progress=False,
        timeout: float | None = None,
        **options,
    ) -> Dataset:
        """Upload `path` as a new version of dataset `name` (created first if the team has none by that name).

        The task defaults from the file: a .zip is image classification, .csv/.npz tabular.
        Returns the dataset, refreshed; its new version is `dataset.upload_version`.
        """
        team = team or self._client.team
        existing = [d for d in self.list(team=team, name=name) if d.name == name]
        if existing:
            dataset = existing[0]
        else:
            task = task or TASK_BY_SUFFIX.get(Path(path).suffix.lower())
            if task is None:
                raise ValueError(f"say task= for {path}: image_classification or tabular_classification")
            dataset = self.create(name, task=task, team=team)
        version = dataset.upload(path, wait=wait, progress=progress, timeout=timeout, **options)
        dataset.refresh()
        dataset.upload_version = version
        return dataset
