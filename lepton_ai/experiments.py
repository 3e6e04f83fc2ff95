"""Compression experiments: wait for them, read the recommended version, the frontier, promote."""

from lepton_ai.base import Collection, Resource, poll
from lepton_ai.errors import ExperimentFailed

TERMINAL = {"succeeded", "failed", "cancelled"}


class Experiment(Resource):
    """A compression experiment: trials towards the smallest (or fastest) model within the accuracy target."""

    @property
    def url(self) -> str:
        return f"/api/v1/experiments/{self.data['id']}/"

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def wait(self, *, progress=False, timeout: float | None = None, interval: float = 2.0) -> "Experiment":
        """Until the experiment finishes; `ExperimentFailed` unless it succeeded."""
        poll(
            self,
            done=lambda e: e.finished,
            progress=progress,
            fraction=lambda e: (e.trials_finished or 0) / max(e.trials_total or e.budget or 1, 1),
            text=lambda e: f"{e.trials_finished}/{e.trials_total} trials {e.status}",
            timeout=timeout,
            interval=interval,
            label=f"experiment {self.id}",
        )
        if self.status != "succeeded":
            raise ExperimentFailed(
                f"experiment {self.id} {self.status}: {self.status_reason or 'no reason given'}", resource=self
            )
        return self

    @property
    def recommended(self):
        """The recommended Version (smallest or fastest within the target), or None."""
        from lepton_ai.models import Version

        best = self.data.get("recommended")
        return Version.fetch(self._client, best["model"], best["version"]) if best else None

    def trials(self, **filters) -> list[dict]:
        return list(self._client.http.pages(f"{self.url}trials/", **filters))

    def frontier(self, measure: str = "size") -> list[dict]:
        """The Pareto-optimal trials by size (or latency), cheapest first."""
        return self._client.http.get(f"{self.url}frontier/", measure=measure)

    def promote(self, *, version: int | None = None, trial: int | None = None, alias: str = "production") -> dict:
        """Point an alias of the model at a trial's version (default: the recommended one)."""
        body = {
            "alias": alias,
            **({"version": version} if version is not None else {}),
            **({"trial": trial} if trial is not None else {}),
        }
        return self._client.http.post(f"{self.url}promote/", json=body)

    def cancel(self) -> "Experiment":
        self.data = self._client.http.post(f"{self.url}cancel/")
        return self


class Experiments(Collection):
    """client.experiments: list(team=, status=, …), get(id), create(**fields of POST /api/v1/experiments/)."""

    path = "/api/v1/experiments/"
    resource = Experiment

    def create(self, **body) -> Experiment:
        return Experiment(self._client, self._client.http.post(self.path, json=body))
