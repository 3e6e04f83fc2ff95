from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.accounts import api

router = SimpleRouter(trailing_slash=True)
router.register("auth/tokens", api.TokenViewSet, basename="token")
router.register("invitations", api.InvitationViewSet, basename="invitation")
router.register("teams", api.TeamViewSet, basename="team")
router.register(r"teams/(?P<team_slug>[-a-zA-Z0-9_]+)/members", api.MemberViewSet, basename="member")

urlpatterns = [path("me/", api.MeView.as_view(), name="me"), *router.urls]
