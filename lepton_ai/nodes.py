"""Nodes: the machines jobs run on, with their GPUs (shared by every team)."""

from lepton_ai.base import Collection, Resource


class Node(Resource):
    @property
    def url(self) -> str:
        return f"/api/v1/nodes/{self.data['id']}/"


class Nodes(Collection):
    """client.nodes: list(pool=, status=), get(id)."""

    path = "/api/v1/nodes/"
    resource = Node
