"""REST API of accounts: tokens, the caller, teams and their members. Thin: services decide."""

from django.db.models import F, OuterRef, Prefetch, Subquery
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.accounts import services, tokens
from apps.accounts.filters import MemberFilter, TeamFilter, TokenFilter
from apps.accounts.models import ApiToken, Membership, Team, UsageRecord
from apps.accounts.selectors import (
    memberships_with_users,
    team_for_user,
    team_memberships,
    user_invitations,
    user_teams,
    user_tokens,
)
from apps.accounts.serializers import (
    InvitationSerializer,
    MemberCreateSerializer,
    MemberSerializer,
    MemberUpdateSerializer,
    MeSerializer,
    TeamCreateSerializer,
    TeamDetailSerializer,
    TeamSerializer,
    TeamUpdateSerializer,
    TokenCreatedSerializer,
    TokenCreateSerializer,
    TokenSerializer,
    UsageRecordSerializer,
)
from apps.core.api.views import ScopedQuerysetMixin, StrictQueryParamsMixin

USAGE_PARAMS = [
    OpenApiParameter("kind", str, enum=UsageRecord.Kind.values, description="Only lines of this kind."),
    OpenApiParameter("page", int, description="A page number within the paginated result set."),
    OpenApiParameter("page_size", int, description="Number of results to return per page."),
]


class TokenViewSet(
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your personal API tokens. Creating one takes a username and password (no session)."""

    model = ApiToken
    serializer_class = TokenSerializer
    filterset_class = TokenFilter
    ordering_fields = ["created_at", "name", "last_used_at", "expires_at"]
    throttle_scope = "token_create"

    def scoped_queryset(self):
        return user_tokens(self.request.user)

    def get_permissions(self):
        return [AllowAny()] if self.action == "create" else [IsAuthenticated()]

    def get_throttles(self):
        return [ScopedRateThrottle()] if self.action == "create" else []

    @extend_schema(request=TokenCreateSerializer, responses={201: TokenCreatedSerializer}, auth=[])
    def create(self, request):
        params = TokenCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        token, secret = tokens.token_create_with_password(request=request, **params.validated_data)
        token.token = secret
        return Response(TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke a token", responses={204: None})
    def destroy(self, request, *args, **kwargs):
        tokens.token_revoke(actor=request.user, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationViewSet(ScopedQuerysetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Invitations to teams waiting for your answer. Accept to join; decline to drop them."""

    model = Membership
    serializer_class = InvitationSerializer
    ordering_fields = ["created_at"]

    def scoped_queryset(self):
        return user_invitations(self.request.user).order_by("-created_at")

    def _answer(self, request, pk, accept: bool):
        invitation = self.get_object()
        membership = services.invitation_answer(user=request.user, membership=invitation, accept=accept)
        return Response(
            MemberSerializer(membership).data if membership else None,
            status=status.HTTP_200_OK if membership else status.HTTP_204_NO_CONTENT,
        )

    @extend_schema(request=None, responses=MemberSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        return self._answer(request, pk, accept=True)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        return self._answer(request, pk, accept=False)


class MeView(StrictQueryParamsMixin, APIView):
    """Who the caller is, and their teams with their role in each."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        teams = _teams_with_role(request.user)
        user = request.user
        return Response(MeSerializer({"username": user.username, "email": user.email, "teams": teams}).data)


def _teams_with_role(user):
    role = Membership.objects.filter(team=OuterRef("pk"), user=user).values("role")[:1]
    return user_teams(user).annotate(my_role=Subquery(role)).order_by("name")


class TeamViewSet(
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's teams. The detail shows members, quota limits and usage."""

    model = Team
    lookup_field = "slug"
    filterset_class = TeamFilter
    ordering_fields = ["name", "slug", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]
    action_query_params = {"usage": USAGE_PARAMS}

    def scoped_queryset(self):
        teams = _teams_with_role(self.request.user)
        if self.action != "list":
            members = Prefetch("memberships", queryset=memberships_with_users())
            teams = teams.select_related("quota__plan").prefetch_related(members)
        return teams

    def get_serializer_class(self):
        return TeamSerializer if self.action == "list" else TeamDetailSerializer

    @extend_schema(request=TeamCreateSerializer, responses={201: TeamDetailSerializer})
    def create(self, request):
        params = TeamCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        team = services.team_create(
            creator=request.user, name=params.validated_data["name"], slug=params.validated_data.get("slug") or None
        )
        return Response(self._detail(team.slug), status=status.HTTP_201_CREATED)

    @extend_schema(request=TeamUpdateSerializer, responses=TeamDetailSerializer)
    def partial_update(self, request, slug=None):
        team = self.get_object()  # first: another team's slug is a 404 whatever the body
        params = TeamUpdateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        services.team_rename(actor=request.user, team=team, name=params.validated_data["name"])
        return Response(self._detail(slug))

    @extend_schema(parameters=USAGE_PARAMS, responses=UsageRecordSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])  # paginated; `kind` is its only filter
    def usage(self, request, slug=None):
        """The team's usage ledger (GPU-seconds per job attempt, bytes stored and freed), newest first."""
        team = self.get_object()
        records = UsageRecord.objects.filter(team=team).order_by("-created_at", "-pk")
        kind = request.query_params.get("kind")
        if kind:
            if kind not in UsageRecord.Kind.values:
                raise ValidationError({"kind": [f"Use one of {', '.join(UsageRecord.Kind.values)}."]})
            records = records.filter(kind=kind)
        page = self.paginate_queryset(records)
        return self.get_paginated_response(UsageRecordSerializer(page, many=True).data)

    def _detail(self, slug):
        return TeamDetailSerializer(self.scoped_queryset().get(slug=slug)).data


class MemberViewSet(
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Members of one of the caller's teams. Admins add, re-role and remove; anyone may leave."""

    model = Membership
    serializer_class = MemberSerializer
    filterset_class = MemberFilter
    ordering_fields = ["username", "role", "joined_at"]
    lookup_field = "user__username"
    lookup_url_kwarg = "username"
    lookup_value_regex = r"[^/]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_team(self):
        if not hasattr(self, "_team"):
            self._team = team_for_user(self.request.user, self.kwargs["team_slug"])
        return self._team

    def scoped_queryset(self):
        return team_memberships(self.get_team()).annotate(username=F("user__username"), joined_at=F("accepted_at"))

    @extend_schema(request=MemberCreateSerializer, responses={201: MemberSerializer})
    def create(self, request, team_slug=None):
        team = self.get_team()  # first: another team's slug is a 404 whatever the body
        params = MemberCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        membership = services.member_add(
            actor=request.user,
            team=team,
            user_identifier=params.validated_data["user"],
            role=params.validated_data["role"],
        )
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MemberUpdateSerializer, responses=MemberSerializer)
    def partial_update(self, request, team_slug=None, username=None):
        membership = self.get_object()
        params = MemberUpdateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        membership = services.member_set_role(
            actor=request.user, membership=membership, role=params.validated_data["role"]
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, team_slug=None, username=None):
        services.member_remove(actor=request.user, membership=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
