from django.urls import path

from apps.registry import views

app_name = "registry"

urlpatterns = [
    path("models/", views.model_list, name="list"),
    path("models/new/", views.model_create, name="create"),
    path("models/<int:pk>/", views.model_detail, name="detail"),
    path("models/<int:pk>/versions-table/", views.model_versions_partial, name="versions_partial"),
    path("models/<int:pk>/upload/", views.version_upload, name="upload"),
    path("models/<int:pk>/alias/", views.alias_set, name="alias_set"),
    path("models/<int:pk>/delete/", views.model_delete, name="delete"),
    path("models/<int:pk>/versions/<int:number>/", views.version_detail, name="version"),
    path("models/<int:pk>/versions/<int:number>/work/", views.version_work_partial, name="version_work"),
    path("models/<int:pk>/versions/<int:number>/evaluate/", views.version_evaluate, name="version_evaluate"),
    path("models/<int:pk>/versions/<int:number>/export/", views.version_export, name="version_export"),
]
