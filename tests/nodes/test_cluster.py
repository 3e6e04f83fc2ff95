"""Two node agents as separate processes, pretend GPUs, three teams: limits hold, every job finishes."""

import signal
import sqlite3
import threading
import time

from tests.processes import lepton_env, manage, start, stop, wait_until, wait_while_progressing

SETUP = """
from django.contrib.auth import get_user_model
from apps.accounts.models import TeamQuota
from apps.accounts.services import team_create
from apps.datasets import services as datasets
from apps.datasets.models import DatasetVersion
from apps.registry.services import model_create
user = get_user_model().objects.create_user("ops", password="x")
for slug, gpus in {quotas}.items():
    team = team_create(creator=user, name=slug, slug=slug)
    TeamQuota.objects.filter(team=team).update(max_concurrent_gpus=gpus, max_running_jobs=4)
    dataset = datasets.dataset_create(actor=user, team=team, name="iris", task="tabular_classification")
    version = DatasetVersion.objects.create(dataset=dataset, number=1, source_format="bundled", source_name="iris",
                                            source_options={{"name": "iris", "params": {{}}, "seed": 0}})
    datasets.version_ingest(version)
    model_create(actor=user, team=team, name="mlp", task="tabular_classification",
                 architecture={{"family": "mlp", "hidden_sizes": {hidden}}}, dataset=dataset)
"""

SUBMIT = """
from django.contrib.auth import get_user_model
from apps.accounts.models import Team
from apps.jobs.services import job_submit
from apps.registry.models import Model
user = get_user_model().objects.get(username="ops")
for slug, gpus in {plan}:
    team = Team.objects.get(slug=slug)
    model = Model.objects.get(team=team)
    job = job_submit(actor=user, team=team, kind="train", gpus=gpus,
                     spec={{"model": model.pk, "dataset": model.dataset_id, **{spec}}})
    print(job.pk)
"""

QUOTAS = {"alpha": 2, "beta": 3, "gamma": 1}
NODE_GPUS = {"n1": 2, "n2": 4}
EPOCHS = 40


def _db(env):
    return sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"), timeout=20)


def _sample(env) -> dict:
    with _db(env) as db:
        per_node = dict(
            db.execute(
                "SELECT n.name, COUNT(*) FROM jobs_gpulease l JOIN nodes_gpu g ON g.id = l.gpu_id "
                "JOIN nodes_node n ON n.id = g.node_id GROUP BY n.name"
            ).fetchall()
        )
        per_team = dict(
            db.execute(
                "SELECT t.slug, COUNT(*) FROM jobs_gpulease l JOIN jobs_job j ON j.id = l.job_id "
                "JOIN accounts_team t ON t.id = j.team_id GROUP BY t.slug"
            ).fetchall()
        )
        running = dict(
            db.execute(
                "SELECT t.slug, COUNT(*) FROM jobs_job j JOIN accounts_team t ON t.id = j.team_id "
                "WHERE j.status IN ('scheduled', 'running') GROUP BY t.slug"
            ).fetchall()
        )
    return {"node": per_node, "team": per_team, "running": running}


def _nodes(env) -> int:
    with _db(env) as db:
        return db.execute("SELECT COUNT(*) FROM nodes_node WHERE status = 'online'").fetchone()[0]


def _statuses(env) -> dict:
    with _db(env) as db:
        return dict(db.execute("SELECT status, COUNT(*) FROM jobs_job GROUP BY status").fetchall())


def test_twenty_jobs_from_three_teams_on_two_nodes_respect_every_limit(tmp_path):
    env = lepton_env(tmp_path, LEPTON_WORKERS="1", LEPTON_NODE_HEARTBEAT_SECONDS="1")
    manage(env, "shell", "-c", SETUP.format(quotas=QUOTAS, hidden="[16]"))
    gpu_plan = {"alpha": [0, 1, 2, 1, 0, 1, 2], "beta": [1, 2, 0, 3, 1, 0, 2], "gamma": [1, 0, 1, 1, 0, 1]}
    plan = [(team, gpus) for team, wanted in gpu_plan.items() for gpus in wanted]
    assert len(plan) == 20
    agents = [
        start({**env, "LEPTON_FAKE_GPUS": str(NODE_GPUS["n1"])}, "node_agent", "--name", "n1", "--slots", "3"),
        start(
            {**env, "LEPTON_FAKE_GPUS": str(NODE_GPUS["n2"])},
            "node_agent",
            "--name",
            "n2",
            "--slots",
            "4",
            "--no-general",
        ),
    ]
    wait_until(lambda: _nodes(env) == 2, seconds=60, what="both nodes registering")
    manage(env, "shell", "-c", SUBMIT.format(plan=plan, spec={"epochs": 2, "batch_size": 32}))
    samples, done = [], threading.Event()

    def watch():
        while not done.is_set():
            samples.append(_sample(env))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        finished = wait_while_progressing(
            lambda: _statuses(env),
            done=lambda s: s.get("succeeded", 0) + s.get("failed", 0) == 20,
            stall_seconds=120,  # a busy machine makes the run slower, not wrong: bound a stall only
            what="all 20 jobs",
        )
    finally:
        done.set()
        watcher.join()
        for agent in agents:
            stop(agent)
    assert finished == {"succeeded": 20}
    assert len(samples) > 20
    for sample in samples:
        assert all(sample["node"].get(node, 0) <= gpus for node, gpus in NODE_GPUS.items()), sample
        assert all(sample["team"].get(team, 0) <= quota for team, quota in QUOTAS.items()), sample
        assert all(count <= 4 for count in sample["running"].values()), sample
    assert max(sum(s["node"].values()) for s in samples) >= 3  # the nodes really ran GPU jobs side by side


def test_a_sigkilled_node_agents_gpu_job_finishes_on_the_other_node_and_is_billed_once(tmp_path):
    env = lepton_env(
        tmp_path,
        LEPTON_WORKERS="1",
        LEPTON_JOB_STALE_SECONDS="3",
        LEPTON_HEARTBEAT_SECONDS="1",
        LEPTON_NODE_HEARTBEAT_SECONDS="1",
        LEPTON_NODE_STALE_SECONDS="3",
        LEPTON_FAKE_GPUS="1",
    )
    manage(env, "shell", "-c", SETUP.format(quotas={"alpha": 1}, hidden="[128, 128]"))
    first = start(env, "node_agent", "--name", "first")
    wait_until(lambda: _nodes(env) == 1, seconds=60, what="the first node registering")
    job = int(
        manage(env, "shell", "-c", SUBMIT.format(plan=[("alpha", 1)], spec={"epochs": EPOCHS, "seed": 3}))
        .strip()
        .splitlines()[-1]
    )
    second = start(env, "node_agent", "--name", "second", "--no-general")
    query = "SELECT status, attempts, checkpoint_epoch FROM jobs_job WHERE id = ?"
    wait_until(
        lambda: ((_db(env).execute(query, (job,)).fetchone()[2]) or 0) >= 3,
        seconds=120,
        what="three checkpoints on the first node",
    )
    try:
        stop(first, signal.SIGKILL)  # no general worker is left: the second node's heartbeats notice the loss
        state = wait_until(
            lambda: (r := _db(env).execute(query, (job,)).fetchone())[0] == "succeeded" and r,
            seconds=180,
            what="the job finishing on the second node",
        )
    finally:
        stop(second)
    assert state[1] == 2
    with _db(env) as db:
        node = db.execute(
            "SELECT n.name FROM jobs_job j JOIN nodes_node n ON n.id = j.node_id WHERE j.id = ?", (job,)
        ).fetchone()[0]
        ledger = db.execute(
            "SELECT source, amount FROM accounts_usagerecord WHERE kind = 'gpu_seconds' ORDER BY source"
        ).fetchall()
        epochs = [r[0] for r in db.execute("SELECT epoch FROM jobs_jobepoch WHERE job_id = ? ORDER BY epoch", (job,))]
    assert node == "second"
    assert [source for source, _ in ledger] == [f"job:{job}:attempt:1", f"job:{job}:attempt:2"]
    assert all(amount > 0 for _, amount in ledger)
    assert epochs == list(range(1, EPOCHS + 1))
