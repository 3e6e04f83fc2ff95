"""The client: one server, one token; resources hang off it (client.datasets, client.models, …)."""

from lepton_ai.config import resolve
from lepton_ai.datasets import Datasets
from lepton_ai.deployments import Deployments, image_files, predict_body
from lepton_ai.errors import BadRequest
from lepton_ai.experiments import Experiments
from lepton_ai.http import Http
from lepton_ai.jobs import Jobs
from lepton_ai.models import Models
from lepton_ai.nodes import Nodes


class Client:
    """`Client("http://127.0.0.1:8000", token="lep_…")`; without arguments, from the environment or `lepton login`.

    `team` is the slug new datasets, models and jobs go to; by default the only team you are in.
    """

    def __init__(
        self, base_url: str | None = None, token: str | None = None, *, team: str | None = None, timeout: float = 60.0
    ):
        base_url, token, team = resolve(base_url, token, team)
        self.base_url = base_url
        self.http = Http(base_url, token, timeout=timeout)
        self._team = team
        self.datasets = Datasets(self)
        self.models = Models(self)
        self.jobs = Jobs(self)
        self.experiments = Experiments(self)
        self.deployments = Deployments(self)
        self.nodes = Nodes(self)

    @classmethod
    def login(cls, base_url: str, username: str, password: str, *, name: str = "lepton-sdk", **kwargs):
        """A client with a new API token made from a username and password; the token is `client.token`."""
        answer = Http(base_url, None).post(
            "/api/v1/auth/tokens/", json={"username": username, "password": password, "name": name}
        )
        client = cls(base_url, answer["token"], **kwargs)
        client.token = answer["token"]
        return client

    def __repr__(self):
        return f"<lepton_ai.Client {self.base_url}>"

    @property
    def team(self) -> str:
        """The team slug to create things in: the one given, else the only team you are in."""
        if self._team is None:
            teams = [t["slug"] for t in self.http.pages("/api/v1/teams/")]
            if len(teams) != 1:
                raise BadRequest(
                    f"you are in {len(teams)} teams ({', '.join(teams) or 'none'}): pass team= to the Client",
                    fields={"team": ["Choose a team."]},
                )
            self._team = teams[0]
        return self._team

    def me(self) -> dict:
        return self.http.get("/api/v1/me/")

    def predict(self, deployment: int, inputs, *, k: int | None = None) -> dict:
        """POST a batch to a deployment's predict endpoint (works with a deployment key as the token too)."""
        return self.http.post(f"/api/v1/deployments/{int(deployment)}/predict", json=predict_body(inputs, k))

    def predict_image(self, deployment: int, path, *, k: int | None = None) -> dict:
        data = {"k": str(k)} if k is not None else None
        return self.http.post(f"/api/v1/deployments/{int(deployment)}/predict", files=image_files(path), data=data)
