"""The Nodes page and API: everyone signed in sees the nodes; only staff drain; other teams' jobs stay unnamed."""

import pytest

from apps.jobs.models import GpuLease, Job
from apps.nodes.models import Node
from tests.factories import UserFactory, online_node


@pytest.fixture
def busy_node(world):
    """A 2-GPU node where Acme holds GPU 0 and Globex GPU 1."""
    node = online_node("gpu-1", slots=4, gpus=2)
    for index, (team, user) in enumerate([(world.acme, world.bob), (world.globex, world.charlie)]):
        job = Job.objects.create(
            team=team,
            submitted_by=user,
            kind="train",
            spec={},
            gpus=1,
            status="running",
            attempts=1,
            node=node,
            gpu_indexes=[index],
        )
        GpuLease.objects.create(gpu=node.gpus.get(index=index), job=job)
    return node


def test_nodes_api_names_only_your_teams_jobs(api_as, world, busy_node):
    body = api_as(world.bob).get("/api/v1/nodes/").json()["results"][0]

    acme_job = Job.objects.get(team=world.acme).pk
    assert (body["name"], body["free_gpus"], body["running_jobs"]) == ("gpu-1", 0, 2)
    assert body["my_jobs"] == [acme_job]
    assert [(g["index"], g["held"], g["job"]) for g in body["gpus"]] == [(0, True, acme_job), (1, True, None)]


def test_a_user_in_no_team_still_sees_the_nodes(api_as, world, busy_node):
    body = api_as(world.dave).get(f"/api/v1/nodes/{busy_node.pk}/").json()

    assert body["my_jobs"] == []
    assert all(g["job"] is None for g in body["gpus"])


def test_nodes_need_authentication(api, client, db):
    assert api.get("/api/v1/nodes/").status_code == 401
    assert client.get("/nodes/")["Location"].startswith("/login/")


def test_only_staff_drain_nodes(api_as, world, busy_node):
    staff = UserFactory(username="operator", is_staff=True)

    refused = api_as(world.alice).post(f"/api/v1/nodes/{busy_node.pk}/drain/")
    drained = api_as(staff).post(f"/api/v1/nodes/{busy_node.pk}/drain/")
    undrained = api_as(staff).post(f"/api/v1/nodes/{busy_node.pk}/undrain/")

    assert refused.status_code == 403
    assert drained.json()["status"] == "draining"
    assert undrained.json()["status"] == "online"


def test_nodes_list_queries_do_not_grow(api_as, world):
    from tests.queries import assert_queries_constant

    online_node("n0", gpus=2)
    client = api_as(world.bob)

    def add():
        for n in range(1, 6):
            online_node(f"n{n}", gpus=2)

    assert_queries_constant(lambda: client.get("/api/v1/nodes/"), add, at_most=8)


def test_nodes_page_shows_gpu_bars_heartbeat_and_jobs(page_as, world, busy_node):
    html = page_as(world.bob).get("/nodes/").content.decode()

    acme_job = Job.objects.get(team=world.acme).pk
    assert 'data-node="gpu-1"' in html
    assert f'href="/jobs/{acme_job}/"' in html
    assert "in use" in html  # Globex's job, unnamed
    assert "s ago" in html
    assert "Drain" not in html  # not staff


def test_staff_drain_from_the_page(page_as, world, busy_node):
    staff = UserFactory(username="operator", is_staff=True)

    response = page_as(staff).post(f"/nodes/{busy_node.pk}/drain/")

    assert response.status_code == 302
    assert Node.objects.get(pk=busy_node.pk).status == "draining"


def test_a_member_cannot_drain_from_the_page(page_as, world, busy_node):
    response = page_as(world.alice).post(f"/nodes/{busy_node.pk}/drain/")

    assert response.status_code == 403
    assert Node.objects.get(pk=busy_node.pk).status == "online"


def test_empty_nodes_page_says_how_to_add_one(page_as, world):
    assert "node_agent --name" in page_as(world.bob).get("/nodes/").content.decode()


def test_dashboard_shows_free_gpus_and_the_teams_jobs(page_as, world, busy_node):
    online_node("spare", gpus=3)

    html = page_as(world.bob).get("/").content.decode()

    assert 'id="cluster-summary"' in html
    assert ">3<" in html.replace(" ", "")  # free GPUs on online nodes
    assert "Your team's work" in html


def test_team_usage_ledger_api(api_as, world):
    from apps.accounts.models import UsageRecord
    from apps.accounts.quotas import usage_record

    usage_record(team=world.acme, kind=UsageRecord.Kind.GPU_SECONDS, amount=7200, source="job:1:attempt:1")

    body = api_as(world.vera).get("/api/v1/teams/acme/usage/", {"kind": "gpu_seconds"}).json()

    assert [(r["kind"], r["amount"], r["source"]) for r in body["results"]] == [
        ("gpu_seconds", 7200, "job:1:attempt:1")
    ]
    assert api_as(world.vera).get("/api/v1/teams/acme/usage/", {"kind": "x"}).status_code == 400


@pytest.mark.parametrize("path", ["/admin/nodes/node/", "/admin/jobs/gpulease/", "/admin/jobs/job/"])
def test_operator_admin_pages_for_nodes_allocations_and_jobs(client, world, busy_node, path):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    response = client.get(path)

    assert response.status_code == 200


def test_the_admin_drains_a_node(client, world, busy_node):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    client.post("/admin/nodes/node/", {"action": "drain", "_selected_action": [busy_node.pk]})

    assert Node.objects.get(pk=busy_node.pk).status == "draining"
