"""HTML pages: team switcher, team page (members, roles, quota usage), tokens."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.accounts import services, tokens
from apps.accounts.current import choose_team, current_team
from apps.accounts.forms import MemberAddForm, MemberRoleForm, TeamCreateForm, TeamRenameForm, TokenCreateForm
from apps.accounts.lockout import lockout_message
from apps.accounts.models import Role
from apps.accounts.quotas import quota_lines, team_quota, team_usage
from apps.accounts.selectors import (
    invitation_for_user,
    membership_of,
    team_for_user,
    team_member,
    team_memberships,
    token_for_user,
    user_tokens,
)
from apps.core.pages import attempt, attempt_form, found_or_404, redirect_or_page


def login_locked_out(request, original_response=None, credentials=None):
    """django-axes' lockout answer (AXES_LOCKOUT_CALLABLE): the login page, saying why and for how long."""
    context = {"form": AuthenticationForm(request), "lockout_message": lockout_message()}
    return render(request, "accounts/login.html", context, status=429)


@login_required
@require_POST
def team_switch(request):
    slug = request.POST.get("team", "")
    if not choose_team(request, slug):
        raise Http404("Team not found.")
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = "dashboard:home"
    return redirect(target)


@login_required
def current_team_page(request):
    team = current_team(request)
    if team is None:
        return redirect("accounts:team_create")
    return redirect("accounts:team", slug=team.slug)


@login_required
def team_create(request):
    form = TeamCreateForm(request.POST if request.method == "POST" else None)
    if request.method != "POST":
        return render(request, "accounts/team_create.html", {"form": form})
    outcome = attempt_form(
        request,
        form,
        lambda data: services.team_create(creator=request.user, name=data["name"], slug=data["slug"] or None),
        success=lambda team: f"Team {team.name} created; you are its owner.",
    )
    if outcome.ok:
        choose_team(request, outcome.value.slug)
    return redirect_or_page(
        request,
        outcome,
        lambda team: reverse("accounts:team", args=[team.slug]),
        lambda status: render(request, "accounts/team_create.html", {"form": form}, status=status),
    )


def _team_context(request, team):
    membership = membership_of(request.user, team)
    return {
        "team": team,
        "memberships": team_memberships(team),
        "my_membership": membership,
        "can_manage": membership.has_role(Role.ADMIN),
        "is_owner": membership.role == Role.OWNER,
        "quota": team_quota(team),
        "quota_lines": quota_lines(team_quota(team), team_usage(team)),
        "roles": Role.choices,
        "add_form": MemberAddForm(),
        "rename_form": TeamRenameForm(initial={"name": team.name}),
    }


def _team_response(request, team, status=200):
    """The full team page, or only its members section for an htmx request."""
    template = "accounts/_members.html" if request.htmx else "accounts/team_detail.html"
    return render(request, template, _team_context(request, team), status=status)


@login_required
def team_detail(request, slug):
    return _team_response(request, found_or_404(team_for_user, request.user, slug))


@login_required
@require_POST
def team_rename(request, slug):
    team = found_or_404(team_for_user, request.user, slug)
    outcome = attempt_form(
        request,
        TeamRenameForm(request.POST),
        lambda data: services.team_rename(actor=request.user, team=team, name=data["name"]),
        success=lambda renamed: f"Team renamed to {renamed.name}.",
    )
    return _team_response(request, team, outcome.status)


@login_required
@require_POST
def member_add(request, slug):
    team = found_or_404(team_for_user, request.user, slug)
    outcome = attempt_form(
        request,
        MemberAddForm(request.POST),
        lambda data: services.member_add(
            actor=request.user, team=team, user_identifier=data["user"], role=data["role"]
        ),
        success=lambda invited: f"{invited.user.username} was invited to {team.name} as {invited.role}.",
    )
    return _team_response(request, team, outcome.status)


@login_required
@require_POST
def member_set_role(request, slug, username):
    team = found_or_404(team_for_user, request.user, slug)
    membership = found_or_404(team_member, team, username)
    outcome = attempt_form(
        request,
        MemberRoleForm(request.POST),
        lambda data: services.member_set_role(actor=request.user, membership=membership, role=data["role"]),
        success=lambda changed: f"{username} is now {changed.role}.",
    )
    return _team_response(request, team, outcome.status)


@login_required
@require_POST
def member_remove(request, slug, username):
    team = found_or_404(team_for_user, request.user, slug)
    membership = found_or_404(team_member, team, username)
    outcome = attempt(
        request,
        lambda: services.member_remove(actor=request.user, membership=membership),
        success=f"{username} left {team.name}.",
    )
    if outcome.ok and membership.user_id == request.user.pk:
        return redirect("dashboard:home")
    return _team_response(request, team, outcome.status)


@login_required
@require_POST
def invitation_answer(request, pk, answer):
    invitation = found_or_404(invitation_for_user, request.user, pk)
    accept = answer == "accept"
    if accept:
        success = f"You joined {invitation.team.name} as {invitation.role}."
    else:
        success = f"You declined the invitation to {invitation.team.name}."
    attempt(
        request,
        lambda: services.invitation_answer(user=request.user, membership=invitation, accept=accept),
        success=success,
    )
    return redirect("dashboard:home")


def _token_issued(request, data) -> tuple:
    """(token, secret) for the form's name and lifetime."""
    days = data["expires_in_days"]
    expires_at = timezone.now() + timedelta(days=days) if days else None
    return tokens.token_create(user=request.user, name=data["name"], expires_at=expires_at)


@login_required
def token_list(request):
    """The tokens page; a POST creates one and shows its secret this once."""
    form = TokenCreateForm(request.POST if request.method == "POST" else None)
    status, new_secret = 200, None
    if request.method == "POST":
        outcome = attempt_form(
            request,
            form,
            lambda data: _token_issued(request, data),
            success=lambda issued: f"Token '{issued[0].name}' created. Copy it now: it will not be shown again.",
        )
        status = outcome.status
        if outcome.ok:
            new_secret, form = outcome.value[1], TokenCreateForm()
    context = {"tokens": user_tokens(request.user), "form": form, "new_secret": new_secret, "now": timezone.now()}
    return render(request, "accounts/tokens.html", context, status=status)


@login_required
@require_POST
def token_revoke(request, token_id):
    token = found_or_404(token_for_user, request.user, token_id)
    attempt(
        request,
        lambda: tokens.token_revoke(actor=request.user, token=token),
        success=lambda revoked: f"Token '{revoked.name}' revoked.",
    )
    return redirect("accounts:tokens")
