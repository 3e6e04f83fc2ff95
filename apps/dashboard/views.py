"""The dashboard and the navigation entries of sections that are not built yet."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.quotas import quota_lines, team_usage
from apps.accounts.selectors import team_memberships, user_invitations
from apps.jobs.selectors import jobs_for_user
from apps.nodes.selectors import free_gpu_count, node_views, nodes_with_gpus


@login_required
def home(request):
    membership = current_membership(request)
    context = {"membership": membership, "invitations": list(user_invitations(request.user))}
    if membership is not None:
        team = membership.team
        jobs = jobs_for_user(request.user).filter(team=team)
        node_list = node_views(request.user, list(nodes_with_gpus()))
        context.update(
            running_jobs=list(jobs.filter(status__in=("scheduled", "running"))[:10]),
            queued_jobs=list(jobs.filter(status="queued")[:10]),
            free_gpus=free_gpu_count(node_list),
            online_nodes=sum(1 for view in node_list if view.node.status == "online"),
            team=team,
            member_count=team_memberships(team).count(),
            quota=team.quota,
            quota_lines=quota_lines(team.quota, team_usage(team)),
            can_manage=membership.has_role(Role.ADMIN),
        )
    return render(request, "dashboard/home.html", context)
