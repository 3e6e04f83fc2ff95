from django.urls import path

from apps.deployments import views

app_name = "deployments"

urlpatterns = [
    path("deployments/", views.deployment_list, name="list"),
    path("deployments/new/", views.deployment_create, name="create"),
    path("deployments/<int:pk>/", views.deployment_detail, name="detail"),
    path("deployments/<int:pk>/stats/", views.deployment_stats, name="stats"),
    path("deployments/<int:pk>/try/", views.deployment_try, name="try"),
    path("deployments/<int:pk>/status/", views.deployment_status, name="status"),
    path("deployments/<int:pk>/target/", views.deployment_target, name="target"),
    path("deployments/<int:pk>/delete/", views.deployment_delete, name="delete"),
    path("deployments/<int:pk>/keys/", views.key_create, name="key_create"),
    path("deployments/<int:pk>/keys/<int:key_pk>/revoke/", views.key_revoke, name="key_revoke"),
]
