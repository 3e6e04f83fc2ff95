import pytest

from tests.factories import online_node


@pytest.fixture(autouse=True)
def cpu_node(db):
    """Jobs need a node to be placed on: a CPU node with room for several at once."""
    return online_node("cpu-1", slots=8)
