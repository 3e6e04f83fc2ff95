"""A train job spanning two nodes: two real node agents, gloo on CPU, the ranks rendezvous through rank 0's store.

Killing one rank's agent ends the attempt for the whole gang: the job is requeued and resumes
from rank 0's checkpoint on the surviving node and a new one.
"""

import re
import signal

from tests.nodes.test_cluster import _db, _nodes
from tests.processes import lepton_env, manage, start, stop, wait_until, wait_while_progressing

FAST = {
    "LEPTON_WORKERS": "1",
    "LEPTON_JOB_STALE_SECONDS": "3",
    "LEPTON_HEARTBEAT_SECONDS": "1",
    "LEPTON_NODE_HEARTBEAT_SECONDS": "1",
    "LEPTON_NODE_STALE_SECONDS": "3",
    "LEPTON_FAKE_GPUS": "1",
    "LEPTON_NODE_ADDRESS": "127.0.0.1",
    "LEPTON_RENDEZVOUS_SECONDS": "30",
}

SETUP = """
from django.contrib.auth import get_user_model
from apps.accounts.models import TeamQuota
from apps.accounts.services import team_create
from apps.registry.services import model_create
from tests.factories import dataset_with_version
user = get_user_model().objects.create_user("ops", password="x")
team = team_create(creator=user, name="alpha", slug="alpha")
TeamQuota.objects.filter(team=team).update(max_concurrent_gpus=2, max_running_jobs=2)
dataset, version = dataset_with_version(team, bundled="digits", name="digits")
model_create(actor=user, team=team, name="mlp", task="image_classification",
             architecture={"family": "mlp", "hidden_sizes": [32], "dropout": 0.1}, dataset=dataset)
"""

SUBMIT = """
from django.contrib.auth import get_user_model
from apps.jobs.services import job_submit
from apps.registry.models import Model
model = Model.objects.get(name="mlp")
job = job_submit(actor=get_user_model().objects.get(username="ops"), team=model.team, kind="train", gpus=1, nodes=2,
                 max_attempts=6, spec={{"model": model.pk, "dataset": model.dataset_id, "epochs": {epochs},
                                        "batch_size": 32, "seed": 4}})
print(job.pk)
"""


def _submit(env, epochs: int) -> int:
    return int(manage(env, "shell", "-c", SUBMIT.format(epochs=epochs)).strip().splitlines()[-1])


def _job(env, pk) -> tuple:
    with _db(env) as db:
        query = "SELECT status, attempts, checkpoint_epoch, status_reason FROM jobs_job WHERE id = ?"
        return db.execute(query, (pk,)).fetchone()


def _progress(env, pk) -> tuple:
    with _db(env) as db:
        epochs = db.execute("SELECT COUNT(*) FROM jobs_jobepoch WHERE job_id = ?", (pk,)).fetchone()[0]
    return (*_job(env, pk)[:2], epochs)


def _rank_nodes(env, pk) -> dict:
    with _db(env) as db:
        rows = db.execute(
            "SELECT r.rank, n.name FROM jobs_jobrank r JOIN nodes_node n ON n.id = r.node_id WHERE r.job_id = ?", (pk,)
        )
        return dict(rows.fetchall())


def _log(env, pk) -> list[tuple[int, str]]:
    with _db(env) as db:
        return db.execute("SELECT attempt, message FROM jobs_joblogline WHERE job_id = ? ORDER BY id", (pk,)).fetchall()


def _finished(env, pk, stall_seconds: float = 120) -> tuple:
    wait_while_progressing(
        lambda: _progress(env, pk),
        done=lambda p: p[0] in ("succeeded", "failed", "cancelled"),
        stall_seconds=stall_seconds,
        what=f"job {pk}",
    )
    return _job(env, pk)


def _digests(messages) -> dict:
    return dict(re.findall(r"^rank (\d) final weights sha256 ([0-9a-f]{64})$", "\n".join(messages), re.M))


def _after_run(env, pk) -> dict:
    with _db(env) as db:
        return {
            "versions": db.execute("SELECT COUNT(*) FROM registry_modelversion").fetchone()[0],
            "leases": db.execute("SELECT COUNT(*) FROM jobs_gpulease").fetchone()[0],
            "epochs": db.execute(
                "SELECT epoch, attempt FROM jobs_jobepoch WHERE job_id = ? ORDER BY epoch", (pk,)
            ).fetchall(),
            "ledger": db.execute(
                "SELECT source FROM accounts_usagerecord WHERE kind = 'gpu_seconds' ORDER BY source"
            ).fetchall(),
        }


def test_a_two_node_train_job_ends_with_identical_weights_on_both_ranks(tmp_path):
    env = lepton_env(tmp_path, **FAST)
    manage(env, "shell", "-c", SETUP)
    agents = [start(env, "node_agent", "--name", "n1"), start(env, "node_agent", "--name", "n2", "--no-general")]
    try:
        wait_until(lambda: _nodes(env) == 2, seconds=60, what="both nodes registering")
        job = _submit(env, epochs=4)
        state = _finished(env, job)
    finally:
        for agent in agents:
            stop(agent)
    assert state[:2] == ("succeeded", 1), state
    assert set(_rank_nodes(env, job).values()) == {"n1", "n2"}
    messages = [message for _, message in _log(env, job)]
    assert "data-parallel training: 2 processes on 2 node(s), gloo" in messages
    digests = _digests(messages)
    assert set(digests) == {"0", "1"}
    assert digests["0"] == digests["1"]
    after = _after_run(env, job)
    assert after["versions"] == 1  # rank 0 alone stores the result
    assert [epoch for epoch, _ in after["epochs"]] == [1, 2, 3, 4]
    assert after["leases"] == 0
    assert after["ledger"] == [(f"job:{job}:attempt:1",)]  # the gang's GPU time, once


def test_killing_one_ranks_agent_requeues_the_whole_job_which_resumes_on_the_survivor_and_a_new_node(tmp_path):
    env = lepton_env(tmp_path, **FAST)
    manage(env, "shell", "-c", SETUP)
    agents = {"n1": start(env, "node_agent", "--name", "n1"), "n2": start(env, "node_agent", "--name", "n2")}
    try:
        wait_until(lambda: _nodes(env) == 2, seconds=60, what="both nodes registering")
        job = _submit(env, epochs=30)
        wait_until(lambda: (_job(env, job)[2] or 0) >= 2, seconds=120, what="two checkpoints of the gang")
        victim = _rank_nodes(env, job)[1]
        survivor = "n1" if victim == "n2" else "n2"
        stop(agents.pop(victim), signal.SIGKILL)  # the machine of rank 1 dies, its workers with it
        agents["n3"] = start(env, "node_agent", "--name", "n3", "--no-general")
        state = _finished(env, job)
    finally:
        for agent in agents.values():
            stop(agent)
    print(f"gang after a lost rank: {state[:2]}, ranks {_rank_nodes(env, job)}")  # shown with -rP
    assert state[0] == "succeeded", state
    assert state[1] >= 2, state
    assert set(_rank_nodes(env, job).values()) == {survivor, "n3"}
    log = _log(env, job)
    last = [message for attempt, message in log if attempt == state[1]]
    assert any(message.startswith("resuming from checkpoint epoch-") for message in last), last
    earlier = [message for attempt, message in log if attempt < state[1]]
    assert any("crashed" in message or "reaper" in message for message in earlier), earlier
    digests = _digests(last)
    assert set(digests) == {"0", "1"}
    assert digests["0"] == digests["1"]
    after = _after_run(env, job)
    assert after["versions"] == 1
    epochs = after["epochs"]
    assert [epoch for epoch, _ in epochs] == list(range(1, 31))
    resumed_at = min(epoch for epoch, attempt in epochs if attempt == state[1])
    assert resumed_at > 2  # the last attempt went on from a checkpoint; it did not start over
    assert after["leases"] == 0
