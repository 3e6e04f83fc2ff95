"""HTML pages: team switcher, team page (members, roles, quota usage), tokens."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.accounts import services, tokens
from apps.accounts.current import choose_team, current_team
from apps.accounts.forms import MemberAddForm, MemberRoleForm, TeamCreateForm, TeamRenameForm, TokenCreateForm
from apps.accounts.models import Role
from apps.accounts.quotas import quota_lines, team_usage
from apps.accounts.selectors import membership_of, team_for_user, team_memberships, user_invitations, user_tokens
from apps.core.errors import NotFound
from apps.core.pages import run_action, run_form_action


def _team_or_404(user, slug):
    try:
        return team_for_user(user, slug)
    except NotFound:
        raise Http404("Team not found.") from None


def _member_or_404(team, username):
    membership = team_memberships(team).filter(user__username=username).first()
    if membership is None:
        raise Http404("Member not found.")
    return membership


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
    status = 200
    if request.method == "POST":
        created = {}

        def create(data):
            created["team"] = services.team_create(creator=request.user, name=data["name"], slug=data["slug"] or None)
            return f"Team {created['team'].name} created; you are its owner."

        status = run_form_action(request, form, create)
        if "team" in created:
            choose_team(request, created["team"].slug)
            return redirect("accounts:team", slug=created["team"].slug)
    return render(request, "accounts/team_create.html", {"form": form}, status=status)


def _team_context(request, team):
    membership = membership_of(request.user, team)
    return {
        "team": team,
        "memberships": team_memberships(team),
        "my_membership": membership,
        "can_manage": membership.has_role(Role.ADMIN),
        "is_owner": membership.role == Role.OWNER,
        "quota": team.quota,
        "quota_lines": quota_lines(team.quota, team_usage(team)),
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
    return _team_response(request, _team_or_404(request.user, slug))


@login_required
@require_POST
def team_rename(request, slug):
    team = _team_or_404(request.user, slug)
    status = run_form_action(
        request,
        TeamRenameForm(request.POST),
        lambda data: f"Team renamed to {services.team_rename(actor=request.user, team=team, name=data['name']).name}.",
    )
    return _team_response(request, team, status)


@login_required
@require_POST
def member_add(request, slug):
    team = _team_or_404(request.user, slug)

    def add(data):
        membership = services.member_add(actor=request.user, team=team, user_identifier=data["user"], role=data["role"])
        return f"{membership.user.username} was invited to {team.name} as {membership.role}."

    status = run_form_action(request, MemberAddForm(request.POST), add)
    return _team_response(request, team, status)


@login_required
@require_POST
def member_set_role(request, slug, username):
    team = _team_or_404(request.user, slug)
    membership = _member_or_404(team, username)

    def set_role(data):
        services.member_set_role(actor=request.user, membership=membership, role=data["role"])
        return f"{username} is now {data['role']}."

    status = run_form_action(request, MemberRoleForm(request.POST), set_role)
    return _team_response(request, team, status)


@login_required
@require_POST
def member_remove(request, slug, username):
    team = _team_or_404(request.user, slug)
    membership = _member_or_404(team, username)

    def remove():
        services.member_remove(actor=request.user, membership=membership)
        return f"{username} left {team.name}."

    status = run_action(request, remove)
    if status == 200 and membership.user_id == request.user.pk:
        return redirect("dashboard:home")
    return _team_response(request, team, status)


@login_required
@require_POST
def invitation_answer(request, pk, answer):
    invitation = user_invitations(request.user).filter(pk=pk).first()
    if invitation is None:
        raise Http404("Invitation not found.")
    accept = answer == "accept"

    def answer_it():
        services.invitation_answer(user=request.user, membership=invitation, accept=accept)
        if accept:
            return f"You joined {invitation.team.name} as {invitation.role}."
        return f"You declined the invitation to {invitation.team.name}."

    run_action(request, answer_it)
    return redirect("dashboard:home")


@login_required
def token_list(request):
    """The tokens page; a POST creates one and shows its secret this once."""
    form = TokenCreateForm(request.POST if request.method == "POST" else None)
    status, new_secret = 200, None
    if request.method == "POST":
        created = {}

        def create(data):
            days = data["expires_in_days"]
            expires_at = timezone.now() + timedelta(days=days) if days else None
            created["token"], created["secret"] = tokens.token_create(
                user=request.user, name=data["name"], expires_at=expires_at
            )
            return f"Token '{created['token'].name}' created. Copy it now: it will not be shown again."

        status = run_form_action(request, form, create)
        new_secret = created.get("secret")
        if new_secret:
            form = TokenCreateForm()
    context = {"tokens": user_tokens(request.user), "form": form, "new_secret": new_secret, "now": timezone.now()}
    return render(request, "accounts/tokens.html", context, status=status)


@login_required
@require_POST
def token_revoke(request, token_id):
    token = user_tokens(request.user).filter(pk=token_id).first()
    if token is None:
        raise Http404("Token not found.")
    run_action(request, lambda: f"Token '{tokens.token_revoke(actor=request.user, token=token).name}' revoked.")
    return redirect("accounts:tokens")
