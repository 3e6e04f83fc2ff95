"""Models and versions: create, train, compress, download weights, set aliases, deploy."""

from pathlib import Path

from lepton_ai.base import Collection, Resource, ident_of
from lepton_ai.errors import NotFound


class Version(Resource):
    """One stored version of a model: `save(path)` downloads its weights, `deploy(name)` serves it."""

    def __init__(self, client, data: dict, model_id: int):
        super().__init__(client, data)
        self.model_id = int(model_id)

    @classmethod
    def fetch(cls, client, model_id: int, number: int) -> "Version":
        return cls(client, client.http.get(f"/api/v1/models/{int(model_id)}/versions/{int(number)}/"), model_id)

    @property
    def url(self) -> str:
        return f"/api/v1/models/{self.model_id}/versions/{self.data['number']}/"

    def __repr__(self):
        label = f" {self.data['label']}" if self.data.get("label") else ""
        return f"<Version model={self.model_id} v{self.data['number']}{label}>"

    def save(self, path) -> Path:
        """Download the weights (safetensors) to `path`; returns it."""
        path = Path(path)
        self._client.http.download(f"{self.url}download/", path)
        return path

    def deploy(self, name: str):
        """Serve this version as deployment `name` (in the model's team)."""
        return self._client.deployments.create(name, model=self.model_id, version=self.number)

    def set_alias(self, alias: str = "production") -> dict:
        """Point an alias of the model at this version (a deployment following the alias switches to it)."""
        return self._client.http.post(
            f"/api/v1/models/{self.model_id}/aliases/", json={"name": alias, "version": self.number}
        )


class Model(Resource):
    """A model of a team: `train(...)`, `compress(...)`, `versions()`, `deploy(...)`."""

    @property
    def url(self) -> str:
        return f"/api/v1/models/{self.data['id']}/"

    def versions(self) -> list[Version]:
        return [Version(self._client, v, self.id) for v in self._client.http.pages(f"{self.url}versions/")]

    def version(self, number: int | None = None) -> Version:
        """Version `number`, or the newest ready one."""
        if number is None:
            ready = self._client.http.get(f"{self.url}versions/", status="ready", ordering="-number", page_size=1)
            if not ready["results"]:
                raise NotFound(f"model {self.name} has no ready version yet")
            return Version(self._client, ready["results"][0], self.id)
        return Version.fetch(self._client, self.id, number)

    def train(
        self, dataset, *, epochs: int = 10, dataset_version: int | None = None, gpus: int = 0, nodes: int = 1, **spec
    ):
        """Submit a train job on `dataset` (a Dataset or id); returns its Job handle at once.

        `gpus` is per node; `nodes` > 1 trains data-parallel across that many nodes at once.
        Other training settings go in **spec: batch_size, optimizer, learning_rate, schedule, seed,
        base_version (fine-tune that version), label, … (see the API docs of POST /api/v1/jobs/).
        """
        spec = {"model": self.id, "dataset": ident_of(dataset), "epochs": epochs, **spec}
        if dataset_version is not None:
            spec["dataset_version"] = dataset_version
        return self._client.jobs.submit("train", spec, team=self.team, gpus=gpus, nodes=nodes)

    def compress(
        self,
        dataset,
        *,
        max_accuracy_drop: float = 1.0,
        objective: str = "size",
        strategy: str = "auto",
        budget: int = 20,
        recipes: list | None = None,
        base_version: int | None = None,
        name: str | None = None,
        **options,
    ):
        """Start a compression experiment on a version (default: the newest ready one); returns the Experiment.

        `recipes` (grid strategy) is a list of step lists, e.g. [[{"step": "quantize", "scheme":
        "int8_weight_only"}]]. Other fields (finetune_epochs, learning_rate, seed, dataset_version,
        eval_dataset) go in **options.
        """
        base = base_version or self.version().number
        body = {
            "name": name or f"{self.name} v{base} ({strategy}, {objective})",
            "model": self.id,
            "base_version": base,
            "dataset": ident_of(dataset),
            "max_accuracy_drop": max_accuracy_drop,
            "objective": objective,
            "strategy": strategy,
            "budget": budget,
            **({"recipes": recipes} if recipes is not None else {}),
            **options,
        }
        return self._client.experiments.create(**body)

    def deploy(self, name: str, *, alias: str | None = None, version: int | None = None):
        """Serve a version, or follow an alias (moving the alias switches the deployment)."""
        return self._client.deployments.create(name, model=self.id, version=version, alias=alias)

    def aliases(self) -> dict[str, int]:
        """{alias name: version number}."""
        return {a["name"]: a["version"] for a in self._client.http.pages(f"{self.url}aliases/")}

    def delete(self) -> None:
        self._client.http.delete(self.url)


class Models(Collection):
    """client.models: list(team=, name=, task=), get(id or name), create(...)."""

    path = "/api/v1/models/"
    named = True
    kind = "model"
    resource = Model

    def create(
        self,
        name: str,
        *,
        arch: dict,
        dataset=None,
        task: str | None = None,
        team: str | None = None,
        description: str = "",
    ) -> Model:
        """A model of an architecture ({"family": "cnn_small", …}) for a dataset (its task by default)."""
        if task is None:
            if dataset is None:
                raise ValueError("give a dataset or a task")
            task = dataset.task if isinstance(dataset, Resource) else self._client.datasets.get(dataset).task
        body = {
            "team": team or self._client.team,
            "name": name,
            "task": task,
            "architecture": arch,
            "description": description,
            **({"dataset": ident_of(dataset)} if dataset is not None else {}),
        }
        return Model(self._client, self._client.http.post(self.path, json=body))
