"""Every piece of background work is a registered job kind, declared once; the page and the API agree on it."""

import pytest
from django.utils import timezone

from apps.jobs.forms import TrainForm
from apps.jobs.kinds import KINDS
from apps.jobs.models import Job, JobKind
from apps.nodes.models import Node
from apps.registry.models import Model
from tests.factories import dataset_with_version, model_with_version, online_node
from tests.tenancy import JOB_KIND_ROUTES, TENANT_ROUTES


def test_every_kind_has_a_declaration_a_handler_and_a_tenancy_route():
    assert set(KINDS) == set(JobKind.values)
    for name, handler in KINDS.items():
        assert list(handler.params), f"{name} declares no parameters"
        assert callable(handler.run), name
        assert callable(handler.validate), name
        routes = JOB_KIND_ROUTES[name]
        assert {route.name for route in routes} == {"api:job-detail", "jobs:detail"}
        assert all(route in TENANT_ROUTES for route in routes), name


def test_no_background_task_is_queued_but_through_a_job():
    """The broker only ever gets a job's attempt: grep the code for anything else handed to it."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "apps"
    queued = [
        f"{path.relative_to(root)}: {line.strip()}"
        for path in root.rglob("*.py")
        for line in path.read_text().splitlines()
        if ("enqueue_on_commit(" in line or "async_task(" in line) and "def " not in line and "import" not in line
    ]
    assert all("RUN_TASK" in line or "core/queue.py" in line for line in queued), queued
    assert not list(root.rglob("leases.py"))


def test_only_the_submittable_kinds_can_be_submitted_through_the_api(api_as, world):
    client = api_as(world.bob)
    for kind in ("ingest", "import", "export"):
        response = client.post("/api/v1/jobs/", {"team": "acme", "kind": kind, "spec": {}}, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith(f"kind: {kind} jobs start when you ")


def test_the_job_kinds_endpoint_publishes_each_declaration(api_as, world):
    results = api_as(world.bob).get("/api/v1/job-kinds/").json()["results"]

    by_kind = {kind["kind"]: kind for kind in results}
    assert set(by_kind) == set(JobKind.values)
    epochs = next(param for param in by_kind["train"]["params"] if param["name"] == "epochs")
    assert epochs == {
        "name": "epochs",
        "type": "integer",
        "required": False,
        "default": 10,
        "minimum": 1,
        "maximum": 1000,
        "help": "Passes over the train split.",
    }
    assert by_kind["ingest"]["submittable"] is False
    assert "POST /api/v1/datasets/<id>/versions/" in by_kind["ingest"]["started_by"]


# --- the train form and the API refuse exactly the same inputs ------------------------------------------------

# What a person means, per field: the form gets it as typed text (None: left blank), a script as JSON
# (None: null). Left blank and null both mean "the default" for an optional parameter.
CANDIDATES = {
    "epochs": [1, 10, 1000, 0, 1001, 2.5, -3, "ten", None],
    "batch_size": [1, 65536, 0, 65537, 1.5],
    "optimizer": ["adam", "sgd", "rmsprop", None],
    "learning_rate": [1e-8, 0.5, 10, 0, 11, -0.1, "fast", float("nan"), float("inf")],
    "momentum": [0, 0.9, 0.999, 1.0, -0.1],
    "weight_decay": [0, 0.5, 1, 2],
    "schedule": ["constant", "cosine", "step", "linear"],
    "step_size": [1, 1000, 0, 1001],
    "gamma": [1e-6, 1, 0, 2],
    "seed": [0, 2**31 - 1, -1, 2**31, 3.3],
    "early_stopping_patience": [None, 1, 1000, 0, 1001, 2.5],
    "base_version": [None, 1, 0, -1, 1.5],
    "label": ["", "baseline", "x" * 100, "x" * 101],
}


def _as_text(value) -> str:
    return "" if value is None else str(value)


def _form_refuses(field: str, value) -> list[str]:
    form = TrainForm({"dataset_version": "1:1", field: _as_text(value)}, dataset_versions=[_StubVersion()])
    form.is_valid()
    return form.errors.get(field, [])


def _api_refuses(field: str, value) -> list[str]:
    serializer = KINDS["train"].spec_serializer(data={"model": 1, field: value})
    serializer.is_valid()
    return [str(message) for message in serializer.errors.get(field, [])]


class _StubVersion:
    dataset_id, number, sample_count = 1, 1, 150
    dataset = type("D", (), {"name": "iris"})()


@pytest.mark.parametrize(
    ("field", "value"), [(field, value) for field, values in CANDIDATES.items() for value in values]
)
def test_the_train_form_and_the_api_serializer_refuse_exactly_the_same_inputs(field, value):
    form, api = _form_refuses(field, value), _api_refuses(field, value)

    assert form == api, f"{field}={value!r}: form {form}, API {api}"


def test_a_refused_value_reads_the_same_from_the_service(world, db):
    from apps.core.errors import ApplicationError
    from apps.jobs.services import job_submit

    with pytest.raises(ApplicationError) as refused:
        job_submit(actor=world.bob, team=world.acme, kind="train", spec={"model": 1, "epochs": 1001})

    assert refused.value.fields == {"spec.epochs": ["must be from 1 to 1000; got 1001"]}
    assert _form_refuses("epochs", 1001) == ["must be from 1 to 1000; got 1001"]


def test_experiment_settings_are_refused_alike_by_the_form_the_api_and_the_service(world, db):
    from apps.experiments.forms import ExperimentForm
    from apps.experiments.serializers import ExperimentCreateSerializer

    for field, value in [("budget", 0), ("budget", 201), ("max_accuracy_drop", -1), ("finetune_epochs", 2.5)]:
        form = ExperimentForm({field: _as_text(value)})
        form.is_valid()
        api = ExperimentCreateSerializer(data={field: value})
        api.is_valid()
        assert form.errors[field] == [str(message) for message in api.errors[field]], (field, value)


# --- work is placed like any job ----------------------------------------------------------------------------


def test_a_node_with_one_slot_running_a_training_job_does_not_start_an_evaluation_beside_it(world, run_tasks, settings):
    from apps.jobs.scheduler import jobs_place_queued
    from apps.jobs.transitions import job_transition
    from apps.registry.evaluations import evaluation_request

    settings.LEPTON_HEARTBEAT_THREAD = False
    Node.objects.all().delete()  # not the 8-slot node of this directory's conftest: only the one-slot node
    node = online_node("one-slot", slots=1)
    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model, version, _ = model_with_version(world.acme, iris, name="iris-mlp", creator=world.bob, steps=1)
    training = Job.objects.create(
        team=world.acme, submitted_by=world.bob, kind="train", spec={}, status="running", attempts=1, node=node
    )
    Job.objects.filter(pk=training.pk).update(started_at=timezone.now(), heartbeat_at=timezone.now())

    with run_tasks():
        evaluation = evaluation_request(actor=world.bob, version=version, dataset_version=iris)

    waiting = Job.objects.get(pk=evaluation.produced_by_job)
    assert (waiting.kind, waiting.status) == ("evaluate", "queued")
    assert waiting.status_reason == "waiting: every worker slot of the 1 online node(s) is busy"

    job_transition(training, "succeeded")  # the slot is free again
    with run_tasks():
        jobs_place_queued()
    waiting.refresh_from_db()
    evaluation.refresh_from_db()
    assert (waiting.status, waiting.node_id, evaluation.status) == ("succeeded", node.pk, "ready")
    assert Model.objects.get(pk=model.pk).versions.count() == 1
