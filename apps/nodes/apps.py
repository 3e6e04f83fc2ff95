from django.apps import AppConfig


class NodesConfig(AppConfig):
    """GPU and CPU nodes: the node agent, GPU inventory, heartbeats, pools and draining."""

    name = "apps.nodes"
    label = "nodes"
