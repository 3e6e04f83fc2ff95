from django.urls import path

from apps.datasets import views

app_name = "datasets"

urlpatterns = [
    path("datasets/", views.dataset_list, name="list"),
    path("datasets/new/", views.dataset_create, name="create"),
    path("datasets/<id:pk>/", views.dataset_detail, name="detail"),
    path("datasets/<id:pk>/delete/", views.dataset_delete, name="delete"),
    path("datasets/<id:pk>/versions/", views.version_create, name="version_create"),
    path("datasets/<id:pk>/versions/<id:number>/status/", views.version_status, name="version_status"),
]
