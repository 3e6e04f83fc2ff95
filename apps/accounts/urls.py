from django.contrib.auth import views as auth_views
from django.urls import path

from apps.accounts import views

app_name = "accounts"

USERNAME = "<str:username>"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("team/", views.current_team_page, name="current_team"),
    path("teams/new/", views.team_create, name="team_create"),
    path("teams/switch/", views.team_switch, name="team_switch"),
    path("teams/<slug:slug>/", views.team_detail, name="team"),
    path("teams/<slug:slug>/rename/", views.team_rename, name="team_rename"),
    path("teams/<slug:slug>/members/", views.member_add, name="member_add"),
    path(f"teams/<slug:slug>/members/{USERNAME}/role/", views.member_set_role, name="member_role"),
    path(f"teams/<slug:slug>/members/{USERNAME}/remove/", views.member_remove, name="member_remove"),
    path("invitations/<id:pk>/<str:answer>/", views.invitation_answer, name="invitation_answer"),
    path("tokens/", views.token_list, name="tokens"),
    path("tokens/<id:token_id>/revoke/", views.token_revoke, name="token_revoke"),
]
