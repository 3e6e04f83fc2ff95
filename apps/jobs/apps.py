from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Jobs: the state machine, submission, placement, the runner, progress, logs and checkpoints."""

    name = "apps.jobs"
    label = "jobs"

    def ready(self):
        from apps.accounts.quotas import register_live_usage_source
        from apps.core import work
        from apps.core.cleanup import register_cleanup
        from apps.jobs.checkpoints import checkpoints_end_with_job, checkpoints_expire
        from apps.jobs.kinds import evaluate, export, ingest, train, weights_import
        from apps.jobs.scheduler import live_usage, node_load
        from apps.jobs.selectors import work_states
        from apps.jobs.services import work_request
        from apps.nodes.load import register_load_source
        from apps.nodes.signals import node_alive

        for kind in (ingest, weights_import, train, evaluate, export):
            kind.register()
        work.provide(work.WorkBackend(request=work_request, states=work_states))  # datasets and registry ask here
        register_live_usage_source(live_usage)  # GPUs held and jobs running count against quotas
        register_load_source(node_load)  # the Nodes page shows what runs where
        node_alive.connect(_place_on_alive_node, dispatch_uid="jobs-place-on-node-alive")
        work.work_ended.connect(checkpoints_end_with_job, dispatch_uid="jobs-checkpoints-end-with-job")
        register_cleanup("job checkpoints", checkpoints_expire)  # the periodic cleanup (apps.core.cleanup)


def _place_on_alive_node(sender, node, joined=False, **kwargs):
    """A node just proved it is alive: notice silent nodes and lost attempts; a node that joins asks for a pass.

    The reaper runs from heartbeats at most once per LEPTON_REAP_INTERVAL_SECONDS cluster-wide
    (one conditional update decides which heartbeat runs it), so a dead node's jobs move within
    the node timeout plus that interval, and 100 nodes do not run it 100 times per beat. A
    heartbeat places nothing by itself (submits, attempt ends and releases ask for passes), but
    runs a requested pass that no worker has started within LEPTON_SCHEDULER_PASS_GRACE.
    """
    from apps.jobs.scheduler import jobs_pass_if_overdue, jobs_request_pass, reap_due
    from apps.jobs.services import jobs_reap_stale

    if reap_due():
        jobs_reap_stale()
    if joined or getattr(node, "rejoined", False):
        jobs_request_pass()
    jobs_pass_if_overdue()
