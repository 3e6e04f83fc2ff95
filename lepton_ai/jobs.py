"""Jobs: a handle to wait on (with a progress bar), tail the log of, cancel or retry."""

import time
from collections.abc import Iterator

from lepton_ai.base import Collection, Resource, poll
from lepton_ai.errors import JobFailed

TERMINAL = {"succeeded", "failed", "cancelled"}


class Job(Resource):
    """A job (train, evaluate, compress): status, progress, result."""

    @property
    def url(self) -> str:
        return f"/api/v1/jobs/{self.data['id']}/"

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def wait(self, *, progress=False, timeout: float | None = None, interval: float = 1.0) -> "Job":
        """Until the job finishes; `JobFailed` (with the reason) unless it succeeded."""
        poll(
            self,
            done=lambda job: job.finished,
            progress=progress,
            fraction=lambda job: job.progress,
            text=lambda job: job.progress_step or job.status_reason or job.status,
            timeout=timeout,
            interval=interval,
            label=f"job {self.id} ({self.kind})",
        )
        if self.status != "succeeded":
            raise JobFailed(f"job {self.id} {self.status}: {self.status_reason or 'no reason given'}", resource=self)
        return self

    def logs(self, *, follow: bool = False, interval: float = 1.0, after: int = 0) -> Iterator[dict]:
        """Log lines ({"id", "level", "message", "created_at", …}); with follow, until the job finishes."""
        while True:
            finished = follow and self.refresh().finished  # read before the lines: none are missed
            lines = self._client.http.get(f"{self.url}logs/", after=after)
            for line in lines:
                after = line["id"]
                yield line
            if not follow or (finished and not lines):
                return
            if not lines:
                time.sleep(interval)

    def metrics(self) -> list[dict]:
        """Per-epoch figures (loss, accuracy, throughput)."""
        return self._client.http.get(f"{self.url}metrics/")

    def cancel(self) -> "Job":
        self.data = self._client.http.post(f"{self.url}cancel/")
        return self

    def retry(self) -> "Job":
        self.data = self._client.http.post(f"{self.url}retry/")
        return self

    @property
    def version(self):
        """The model version a finished train or compress job stored (None before)."""
        from lepton_ai.models import Version

        result = self.data.get("result") or {}
        if not result.get("version"):
            return None
        return Version.fetch(self._client, result["model"], result["version"])


class Jobs(Collection):
    """client.jobs: list(team=, status=, kind=, submitted_by=), get(id), submit(kind, spec), kinds()."""

    path = "/api/v1/jobs/"
    resource = Job

    def kinds(self) -> list[dict]:
        """Every job kind with its parameters (type, range, default, help), as the server declares them."""
        return self._client.http.get("/api/v1/job-kinds/")["results"]

    def submit(
        self,
        kind: str,
        spec: dict,
        *,
        team: str | None = None,
        gpus: int = 0,
        priority: int = 0,
        pool: str = "",
        gpu_model: str = "",
        min_gpu_memory_bytes: int | None = None,
        nodes: int = 1,
    ) -> Job:
        """Queue a job; `gpus` per node, `nodes` > 1 spans that many nodes at once (train jobs)."""
        body = {"team": team or self._client.team, "kind": kind, "spec": spec, "gpus": gpus, "priority": priority}
        body.update(pool=pool, gpu_model=gpu_model)
        if min_gpu_memory_bytes:
            body["min_gpu_memory_bytes"] = min_gpu_memory_bytes
        if nodes != 1:
            body["nodes"] = nodes
        return Job(self._client, self._client.http.post(self.path, json=body))
