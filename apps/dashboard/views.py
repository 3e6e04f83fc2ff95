"""The dashboard and the navigation entries of sections that are not built yet."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.quotas import quota_lines, team_quota, team_usage
from apps.accounts.selectors import team_member_count, user_invitations
from apps.jobs.selectors import team_active_jobs
from apps.nodes.selectors import free_gpu_count, node_views, nodes_with_gpus


@login_required
def home(request):
    membership = current_membership(request)
    context = {"membership": membership, "invitations": list(user_invitations(request.user))}
    if membership is not None:
        team = membership.team
        running_jobs, queued_jobs = team_active_jobs(request.user, team)
        node_list = node_views(request.user, list(nodes_with_gpus()))
        context.update(
            running_jobs=running_jobs,
            queued_jobs=queued_jobs,
            free_gpus=free_gpu_count(node_list),
            online_nodes=sum(1 for view in node_list if view.node.status == "online"),
            team=team,
            member_count=team_member_count(team),
            quota=team_quota(team),
            quota_lines=quota_lines(team_quota(team), team_usage(team)),
            can_manage=membership.has_role(Role.ADMIN),
        )
    return render(request, "dashboard/home.html", context)
