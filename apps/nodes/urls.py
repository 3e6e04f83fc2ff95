from django.urls import path

from apps.nodes import views

app_name = "nodes"

urlpatterns = [
    path("nodes/", views.node_list, name="list"),
    path("nodes/<id:pk>/<str:action>/", views.node_drain, name="drain"),
]
