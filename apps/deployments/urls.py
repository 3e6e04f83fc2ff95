from django.urls import path

from apps.deployments import views

app_name = "deployments"

urlpatterns = [
    path("deployments/", views.deployment_list, name="list"),
    path("deployments/new/", views.deployment_create, name="create"),
    path("deployments/<id:pk>/", views.deployment_detail, name="detail"),
    path("deployments/<id:pk>/stats/", views.deployment_stats, name="stats"),
    path("deployments/<id:pk>/try/", views.deployment_try, name="try"),
    path("deployments/<id:pk>/status/", views.deployment_status, name="status"),
    path("deployments/<id:pk>/target/", views.deployment_target, name="target"),
    path("deployments/<id:pk>/delete/", views.deployment_delete, name="delete"),
    path("deployments/<id:pk>/keys/", views.key_create, name="key_create"),
    path("deployments/<id:pk>/keys/<id:key_pk>/revoke/", views.key_revoke, name="key_revoke"),
]
