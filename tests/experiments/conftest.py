import pytest

from tests.factories import dataset_with_version, model_with_version, online_node


@pytest.fixture(autouse=True)
def cpu_node(db):
    """Trials are jobs: a CPU node with room for several at once."""
    return online_node("cpu-1", slots=8)


@pytest.fixture(autouse=True)
def _no_heartbeat_thread(settings):
    settings.LEPTON_HEARTBEAT_THREAD = False  # jobs live in the test's transaction


@pytest.fixture
def digits(world):
    return dataset_with_version(world.acme, bundled="digits", name="digits")[1]


@pytest.fixture
def digits_model(world, digits):
    """A digits MLP trained enough that compression has accuracy to lose (about 95%)."""
    model, version, _ = model_with_version(
        world.acme,
        digits,
        spec={"family": "mlp", "hidden_sizes": [128]},
        name="digits-mlp",
        creator=world.bob,
        steps=150,
    )
    return model, version
