"""The experiments API and pages: create, read, trials, frontier, recommended, promote, CSV, errors, queries."""

import csv
import io

import pytest
from django.urls import reverse

from apps.experiments.models import Experiment, Trial
from apps.experiments.selectors import trials_csv
from tests.factories import dataset_with_version, experiment_row, model_with_version
from tests.queries import assert_queries_constant

INT8 = [{"step": "quantize", "scheme": "int8_weight_only"}]
PRUNE = [{"step": "prune", "sparsity": 0.7}]


@pytest.fixture
def iris(world):
    return dataset_with_version(world.acme, bundled="iris", name="iris")[1]


@pytest.fixture
def iris_model(world, iris):
    model, version, _ = model_with_version(
        world.acme, iris, spec={"family": "mlp", "hidden_sizes": [64]}, name="iris-mlp", creator=world.bob, steps=200
    )
    return model, version


def _create(client, model, version, dataset, **extra):
    body = {
        "name": "iris sweep",
        "model": model.pk,
        "base_version": version.number,
        "dataset": dataset.dataset_id,
        "strategy": "grid",
        "recipes": [INT8, PRUNE],
        "budget": 4,
        "max_accuracy_drop": 5.0,
        "finetune_epochs": 1,
        **extra,
    }
    return client.post(reverse("api:experiment-list"), body, format="json")


def test_an_experiment_created_through_the_api_runs_its_trials_and_answers_every_read(
    world, iris, iris_model, api_as, run_tasks
):
    model, version = iris_model
    client = api_as(world.bob)
    with run_tasks():
        response = _create(client, model, version, iris)
    assert response.status_code == 201, response.json()
    experiment_id = response.json()["id"]

    body = client.get(reverse("api:experiment-detail", args=[experiment_id])).json()
    assert body["status"] == "succeeded", body["status_reason"]
    assert (body["trials_total"], body["trials_finished"]) == (2, 2)
    assert (body["model"], body["base_version"], body["dataset"]) == (model.pk, version.number, iris.dataset_id)

    trials = client.get(reverse("api:experiment-trial-list", args=[experiment_id]), {"ordering": "artifact_bytes"})
    rows = trials.json()["results"]
    assert [row["artifact_bytes"] for row in rows] == sorted(row["artifact_bytes"] for row in rows)
    assert {row["family"] for row in rows} == {"baseline", "quantize", "prune"}
    assert all(row["version"] and row["accuracy"] is not None for row in rows)

    frontier = client.get(reverse("api:experiment-frontier", args=[experiment_id])).json()
    assert frontier
    assert [r["artifact_bytes"] for r in frontier] == sorted(r["artifact_bytes"] for r in frontier)
    assert client.get(reverse("api:experiment-frontier", args=[experiment_id]), {"measure": "speed"}).status_code == 400

    best = body["recommended"]
    assert best is not None
    assert client.get(reverse("api:experiment-recommended", args=[experiment_id])).json() == best
    smallest = min((r for r in rows if r["number"] and r["within_target"]), key=lambda r: r["artifact_bytes"])
    assert best["version"] == smallest["version"]

    promoted = client.post(
        reverse("api:experiment-promote", args=[experiment_id]), {"alias": "production"}, format="json"
    )
    assert promoted.status_code == 200, promoted.json()
    assert promoted.json()["version"] == best["version"]
    assert model.aliases.get(name="production").version.number == best["version"]

    csv_response = client.get(reverse("api:experiment-trials-csv", args=[experiment_id]))
    table = list(csv.reader(io.StringIO(csv_response.content.decode())))
    assert table[0][0] == "trial"
    assert len(table) == 4


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recipes": [[{"step": "prune", "sparsity": 2}]]}, "recipes.0.0.sparsity"),
        ({"recipes": [INT8, INT8]}, "recipes.1"),
        ({"recipes": []}, "recipes"),
        ({"budget": 1}, "recipes"),
        ({"strategy": "auto"}, "recipes"),
        ({"max_accuracy_drop": -1}, "max_accuracy_drop"),
        ({"objective": "fame"}, "objective"),
        ({"base_version": 99}, None),
    ],
)
def test_bad_experiments_are_refused_naming_the_field_and_nothing_is_written(
    world, iris, iris_model, api_as, change, field
):
    model, version = iris_model
    response = _create(api_as(world.bob), model, version, iris, **change)
    assert response.status_code in (400, 404), response.json()
    if field:
        assert field in response.json()["error"]["fields"], response.json()
    assert not Experiment.objects.exists()
    assert not Trial.objects.exists()


def test_a_quantized_version_cannot_be_the_base(world, iris, iris_model, api_as, run_tasks):
    model, version = iris_model
    client = api_as(world.bob)
    with run_tasks():
        _create(client, model, version, iris, recipes=[INT8], budget=1)
    quantized = model.versions.get(source="compress")
    response = _create(client, model, quantized, iris, name="again", recipes=[PRUNE])
    assert response.status_code == 400
    assert "already quantized" in response.json()["error"]["message"]


def test_a_viewer_reads_but_cannot_create_cancel_or_promote(world, iris, iris_model, api_as, run_tasks):
    model, version = iris_model
    with run_tasks():
        experiment_id = _create(api_as(world.bob), model, version, iris).json()["id"]
    viewer = api_as(world.vera)
    assert viewer.get(reverse("api:experiment-detail", args=[experiment_id])).status_code == 200
    assert _create(viewer, model, version, iris, name="mine").status_code == 403
    assert viewer.post(reverse("api:experiment-promote", args=[experiment_id]), {}, format="json").status_code == 403


def test_the_list_runs_a_constant_number_of_queries(world, iris, iris_model, api_as, page_as):
    model, version = iris_model

    def add(count=[0]):  # noqa: B006 (a counter across calls)
        for _ in range(3):
            count[0] += 1
            experiment = experiment_row(
                world.acme,
                version,
                iris,
                name=f"e{count[0]}",
                max_accuracy_drop=1,
                budget=2,
                status="succeeded",
                created_by=world.bob,
            )
            baseline = Trial.objects.create(
                experiment=experiment,
                number=0,
                recipe_key="0" * 64,
                family="baseline",
                status="succeeded",
                version=version,
                artifact_bytes=1000,
                accuracy=0.9,
            )
            best = Trial.objects.create(
                experiment=experiment,
                number=1,
                recipe_key="1" * 64,
                family="quantize",
                status="succeeded",
                version=version,
                artifact_bytes=250,
                accuracy=0.9,
            )
            experiment.recommended = best
            experiment.save()
            assert baseline.pk

    add()
    client = api_as(world.bob)
    assert_queries_constant(lambda: client.get(reverse("api:experiment-list")), add, at_most=8)
    page = page_as(world.bob)
    assert_queries_constant(lambda: page.get(reverse("experiments:list")), add, at_most=14)
    response = page.get(reverse("experiments:list"))
    assert "4.0\u00d7" in response.content.decode()  # the best size reduction at target (4.0x)


def test_csv_cells_that_spreadsheets_would_run_are_neutralised(world, iris, iris_model):
    _, version = iris_model
    experiment = experiment_row(
        world.acme,
        version,
        iris,
        name="csv",
        max_accuracy_drop=1,
        budget=1,
    )
    trial = Trial.objects.create(
        experiment=experiment,
        number=1,
        recipe_key="2" * 64,
        family="quantize",
        label='=HYPERLINK("http://evil")',
        error="+1",
        status="failed",
    )
    rows = list(csv.reader(io.StringIO(trials_csv(experiment, [trial]))))
    assert rows[1][1] == '\'=HYPERLINK("http://evil")'
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in rows[1])


def test_the_experiment_page_shows_the_chart_table_and_recommendation(world, iris, iris_model, page_as, run_tasks):
    model, version = iris_model
    from apps.experiments.services import experiment_create

    with run_tasks():
        experiment = experiment_create(
            actor=world.bob,
            team=world.acme,
            name="page",
            base_version=version,
            train_dataset_version=iris,
            strategy="grid",
            recipes=[INT8, PRUNE],
            budget=2,
            max_accuracy_drop=5.0,
            finetune_epochs=1,
        )
    page = page_as(world.bob).get(reverse("experiments:detail", args=[experiment.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-figure="tradeoff-chart"' in html
    assert "trials-table" in html
    assert 'id="recommended"' in html
    sorted_page = page_as(world.bob).get(reverse("experiments:detail", args=[experiment.pk]), {"sort": "-bytes"})
    assert sorted_page.status_code == 200
    csv_page = page_as(world.bob).get(reverse("experiments:csv", args=[experiment.pk]))
    assert csv_page["Content-Type"].startswith("text/csv")


def test_the_form_builds_grid_recipes_from_sweeps_without_json(world, iris, iris_model, page_as, run_tasks):
    model, version = iris_model
    page = page_as(world.bob)
    assert page.get(reverse("experiments:create")).status_code == 200
    form = {
        "name": "from the form",
        "base_version": f"{model.pk}:{version.number}",
        "dataset_version": f"{iris.dataset_id}:{iris.number}",
        "eval_dataset_version": "",
        "max_accuracy_drop": "5",
        "objective": "size",
        "strategy": "grid",
        "budget": "10",
        "finetune_epochs": "1",
        "learning_rate": "0.0005",
        "schemes": ["int8_weight_only"],
        "sparsities": "0.5, 0.8",
        "ratios": "",
        "ranks": "",
        "students": "",
        "then_int8": "on",
    }
    with run_tasks():
        response = page.post(reverse("experiments:create"), form)
    assert response.status_code == 302
    experiment = Experiment.objects.get(name="from the form")
    labels = sorted(experiment.trials.values_list("label", flat=True))
    assert labels == sorted(
        [
            "base v1",
            "int8",
            "prune 50% (3 rounds)",
            "prune 80% (3 rounds)",
            "prune 50% (3 rounds) → int8",
            "prune 80% (3 rounds) → int8",
        ]
    )
    bad = page.post(reverse("experiments:create"), {**form, "name": "bad", "sparsities": "0.5, lots"})
    assert bad.status_code == 400
    assert "lots" in bad.content.decode()
    assert not Experiment.objects.filter(name="bad").exists()


def test_operators_see_experiments_and_their_trials_in_the_admin(client, world, iris, iris_model):
    from tests.factories import UserFactory

    _, version = iris_model
    experiment = experiment_row(
        world.acme,
        version,
        iris,
        name="admin view",
        max_accuracy_drop=1,
        budget=1,
    )
    Trial.objects.create(experiment=experiment, number=0, recipe_key="0" * 64, family="baseline", label="base v1")
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    assert client.get("/admin/experiments/experiment/").status_code == 200
    page = client.get(f"/admin/experiments/experiment/{experiment.pk}/change/")
    assert page.status_code == 200
    assert "base v1" in page.content.decode()


def test_a_finished_experiment_is_deleted_by_its_creator_or_an_admin_but_not_while_running(
    world, iris, iris_model, api_as
):
    _, version = iris_model

    def experiment(name, status):
        return experiment_row(
            world.acme,
            version,
            iris,
            name=name,
            max_accuracy_drop=1,
            budget=1,
            status=status,
            created_by=world.bob,
        )

    running, done, other = experiment("running", "running"), experiment("done", "succeeded"), experiment("x", "failed")
    assert api_as(world.bob).delete(reverse("api:experiment-detail", args=[running.pk])).status_code == 409
    assert api_as(world.vera).delete(reverse("api:experiment-detail", args=[done.pk])).status_code == 403
    assert api_as(world.bob).delete(reverse("api:experiment-detail", args=[done.pk])).status_code == 204
    assert api_as(world.adam).delete(reverse("api:experiment-detail", args=[other.pk])).status_code == 204
    assert list(Experiment.objects.values_list("name", flat=True)) == ["running"]


def test_deleting_a_model_deletes_its_experiments(world, iris, iris_model, api_as):
    model, version = iris_model
    experiment_row(
        world.acme,
        version,
        iris,
        name="gone with the model",
        max_accuracy_drop=1,
        budget=1,
        status="succeeded",
        created_by=world.bob,
    )
    assert api_as(world.alice).delete(reverse("api:model-detail", args=[model.pk])).status_code == 204
    assert not Experiment.objects.exists()


def test_a_version_page_links_to_compress_and_deploy_it_with_the_forms_preselected(world, iris, iris_model, page_as):
    model, version = iris_model
    page = page_as(world.bob)
    html = page.get(reverse("registry:version", args=[model.pk, version.number])).content.decode()
    assert f"/experiments/new/?model={model.pk}&amp;version={version.number}" in html
    assert f"/deployments/?target=v:{model.pk}:{version.number}" in html
    form = page.get(reverse("experiments:create"), {"model": model.pk, "version": version.number}).content.decode()
    assert f'<option value="{model.pk}:{version.number}" selected>' in form
    deploy = page.get(reverse("deployments:list"), {"target": f"v:{model.pk}:{version.number}"}).content.decode()
    assert f'value="v:{model.pk}:{version.number}" selected' in deploy


@pytest.mark.parametrize(
    ("recipes", "field"),
    [
        ([[{"step": []}]], "recipes.0.0.step"),
        ([[{"step": "distill", "student": {"family": "no-such-net"}}]], "recipes.0.0.student.family"),
        (
            [[{"step": "distill", "student": {"family": "mlp", "hidden_sizes": "big"}}]],
            "recipes.0.0.student.hidden_sizes",
        ),
    ],
)
def test_malformed_recipe_steps_are_400s_naming_the_step(world, iris, iris_model, api_as, recipes, field):
    model, version = iris_model
    response = _create(api_as(world.bob), model, version, iris, recipes=recipes)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"], response.json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"base_version": "x"}, "spec.base_version"),
        ({"dataset_version": "x"}, "spec.dataset_version"),
        ({"dataset": "x"}, "spec.dataset"),
    ],
)
def test_a_compress_job_with_non_integer_references_is_a_400(world, iris, iris_model, api_as, change, field):
    model, version = iris_model
    spec = {"model": model.pk, "base_version": version.number, "dataset": iris.dataset_id, "recipe": INT8, **change}
    response = api_as(world.bob).post(
        reverse("api:job-list"), {"team": "acme", "kind": "compress", "spec": spec}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]


def test_a_compress_job_cannot_report_to_another_teams_experiment(world, iris, iris_model, api_as):
    model, version = iris_model
    globex_iris = dataset_with_version(world.globex, bundled="iris", name="g-iris")[1]
    _, globex_version, _ = model_with_version(world.globex, globex_iris, name="g-model", creator=world.charlie)
    theirs = experiment_row(
        world.globex,
        globex_version,
        globex_iris,
        name="theirs",
        max_accuracy_drop=1,
        budget=1,
    )
    spec = {
        "model": model.pk,
        "base_version": version.number,
        "dataset": iris.dataset_id,
        "recipe": INT8,
        "experiment": theirs.pk,
    }
    response = api_as(world.bob).post(
        reverse("api:job-list"), {"team": "acme", "kind": "compress", "spec": spec}, format="json"
    )
    assert response.status_code == 404
    assert "spec.experiment" in response.json()["error"]["fields"]


def test_nothing_is_recommended_on_latency_when_no_trial_is_faster_than_the_base(world, iris, iris_model):
    from apps.experiments.services import _close

    _, version = iris_model
    experiment = experiment_row(
        world.acme,
        version,
        iris,
        name="slow",
        max_accuracy_drop=1,
        budget=1,
        objective="latency",
    )
    common = {"experiment": experiment, "status": "succeeded", "accuracy": 0.9, "artifact_bytes": 100}
    trials = [
        Trial.objects.create(number=0, recipe_key="0" * 64, family="baseline", latency_ms=0.01, **common),
        Trial.objects.create(number=1, recipe_key="1" * 64, family="quantize", latency_ms=0.05, **common),
    ]
    _close(experiment, trials, "succeeded", "")
    experiment.refresh_from_db()
    assert experiment.recommended is None
    assert "faster than it" in experiment.status_reason
