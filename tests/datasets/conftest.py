import pytest

from tests.factories import online_node


@pytest.fixture(autouse=True)
def cpu_node(db):
    """Ingests, imports, evaluations and exports are jobs: a CPU node to place them on."""
    return online_node("cpu-1", slots=4)
