"""What every resource shares: its JSON as attributes, refresh, and polling until work is done."""

import time
from collections.abc import Callable

from lepton_ai.errors import NotFound, WaitTimeout
from lepton_ai.progress import ProgressBar


class Resource:
    """One object of the API. Its fields read as attributes (`job.status`); `data` is the JSON as sent."""

    def __init__(self, client, data: dict):
        self._client = client
        self.data = dict(data)

    @property
    def url(self) -> str:
        raise NotImplementedError

    def __getattr__(self, name):
        try:
            return self.__dict__["data"][name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def refresh(self):
        """Read the object again from the server."""
        self.data = self._client.http.get(self.url)
        return self

    def __repr__(self):
        ident = self.data.get("id", self.data.get("number"))
        name = self.data.get("name")
        return f"<{type(self).__name__} {ident}{' ' + repr(name) if name else ''}>"


def poll(
    resource: Resource,
    *,
    done: Callable[[Resource], bool],
    progress: bool | ProgressBar,
    fraction: Callable[[Resource], float],
    text: Callable[[Resource], str],
    timeout: float | None,
    interval: float,
    label: str,
) -> Resource:
    """Refresh `resource` until `done(resource)`; draw a progress bar on the way if asked."""
    bar = progress if isinstance(progress, ProgressBar) else (ProgressBar(label) if progress else None)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        resource.refresh()
        if done(resource):
            if bar:
                bar.close(fraction(resource), text(resource))
            return resource
        if bar:
            bar.update(fraction(resource), text(resource))
        if deadline is not None and time.monotonic() > deadline:
            raise WaitTimeout(f"{label}: still not finished after {timeout} s ({text(resource)})")
        time.sleep(interval)


class Collection:
    """The list of one kind of resource (client.jobs, client.models, …)."""

    path = ""
    resource: type[Resource] = Resource
    named = False  # get() also takes a name, looked up in the client's team
    kind = "object"

    def __init__(self, client):
        self._client = client

    def list(self, **filters) -> list:
        """Every object the API lists, with its filters (e.g. status="running", ordering="-created_at")."""
        return [self.resource(self._client, item) for item in self._client.http.pages(self.path, **filters)]

    def get(self, ident):
        """One object by id (or, for named kinds, by its exact name in the client's team)."""
        if not self.named or isinstance(ident, int) or str(ident).isdigit():
            return self.resource(self._client, self._client.http.get(f"{self.path}{int(ident)}/"))
        team = self._client.team
        found = [item for item in self.list(team=team, name=ident) if item.name == ident]
        if not found:
            raise NotFound(f"team {team} has no {self.kind} named {ident!r}")
        return found[0]


def ident_of(value) -> int:
    """An id from a resource or a plain number."""
    return int(value.data["id"]) if isinstance(value, Resource) else int(value)
