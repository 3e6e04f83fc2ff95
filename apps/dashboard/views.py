"""The dashboard and the navigation entries of sections that are not built yet."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.accounts.current import current_membership
from apps.accounts.models import Role
from apps.accounts.quotas import quota_lines, team_usage
from apps.accounts.selectors import team_memberships, user_invitations

UPCOMING_SECTIONS = {
    "experiments": ("Experiments", "Compression sweeps that chart accuracy against size and pick the best model."),
    "nodes": ("Nodes", "GPU and CPU nodes with their GPUs, heartbeats and running jobs."),
    "deployments": ("Deployments", "Serve a chosen model version behind a predict endpoint."),
}


@login_required
def home(request):
    membership = current_membership(request)
    context = {"membership": membership, "invitations": list(user_invitations(request.user))}
    if membership is not None:
        team = membership.team
        context.update(
            team=team,
            member_count=team_memberships(team).count(),
            quota=team.quota,
            quota_lines=quota_lines(team.quota, team_usage(team)),
            can_manage=membership.has_role(Role.ADMIN),
        )
    return render(request, "dashboard/home.html", context)


@login_required
def upcoming(request, section):
    title, purpose = UPCOMING_SECTIONS[section]
    return render(request, "dashboard/upcoming.html", {"title": title, "purpose": purpose})
