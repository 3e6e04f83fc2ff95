"""Deployments: create (a version or an alias), predict, keys, statistics, pause and resume."""

from pathlib import Path

from lepton_ai.base import Collection, Resource, ident_of


def as_lists(inputs):
    """numpy arrays (or anything with tolist) as nested lists for JSON."""
    return inputs.tolist() if hasattr(inputs, "tolist") else inputs


class Deployment(Resource):
    """A served model. `predict(inputs)` answers top-k classes per sample."""

    @property
    def url(self) -> str:
        return f"/api/v1/deployments/{self.data['id']}/"

    def predict(self, inputs, *, k: int | None = None) -> list[dict]:
        """Top-k per sample: [{"top_k": [{"index", "name", "probability"}, …]}, …].

        `inputs` is a batch of raw samples (feature vectors, or channels x height x width images
        with 0-255 pixels), as lists or a numpy array.
        """
        return self._client.predict(self.id, inputs, k=k)["predictions"]

    def predict_image(self, path, *, k: int | None = None) -> dict:
        """Top-k for one PNG or JPEG file (resized on the server to the model's input)."""
        return self._client.predict_image(self.id, path, k=k)["predictions"][0]

    def create_key(self, name: str) -> dict:
        """A predict-only key for this deployment: {"id", "prefix", "key", …}; the key is shown only now."""
        return self._client.http.post(f"{self.url}keys/", json={"name": name})

    def keys(self) -> list[dict]:
        return list(self._client.http.pages(f"{self.url}keys/"))

    def revoke_key(self, key_id: int) -> None:
        self._client.http.delete(f"{self.url}keys/{int(key_id)}/")

    def stats(self, minutes: int = 60) -> dict:
        """Requests, errors and latency percentiles: totals and per minute over the last `minutes`."""
        return self._client.http.get(f"{self.url}stats/", minutes=minutes)

    def update(self, **changes) -> "Deployment":
        """Change name, status ("active"/"paused"), version or alias."""
        self.data = self._client.http.patch(self.url, json=changes)
        return self

    def pause(self) -> "Deployment":
        return self.update(status="paused")

    def resume(self) -> "Deployment":
        return self.update(status="active")

    def delete(self) -> None:
        self._client.http.delete(self.url)


class Deployments(Collection):
    """client.deployments: list(team=, status=, model=, name=), get(id or name), create(...)."""

    path = "/api/v1/deployments/"
    named = True
    kind = "deployment"
    resource = Deployment

    def create(self, name: str, *, model, version: int | None = None, alias: str | None = None) -> Deployment:
        """Serve version `version` of `model` (a Model or id), or follow its alias `alias`."""
        body = {"name": name, "model": ident_of(model)}
        if version is not None:
            body["version"] = int(version)
        if alias is not None:
            body["alias"] = alias
        return Deployment(self._client, self._client.http.post(self.path, json=body))


def predict_body(inputs, k: int | None) -> dict:
    return {"inputs": as_lists(inputs), **({"k": k} if k is not None else {})}


def image_files(path) -> dict:
    path = Path(path)
    return {"image": (path.name, path.read_bytes())}
