from django.urls import path

from apps.registry import views

app_name = "registry"

urlpatterns = [
    path("models/", views.model_list, name="list"),
    path("models/new/", views.model_create, name="create"),
    path("models/<id:pk>/", views.model_detail, name="detail"),
    path("models/<id:pk>/versions-table/", views.model_versions_partial, name="versions_partial"),
    path("models/<id:pk>/upload/", views.version_upload, name="upload"),
    path("models/<id:pk>/alias/", views.alias_set, name="alias_set"),
    path("models/<id:pk>/delete/", views.model_delete, name="delete"),
    path("models/<id:pk>/versions/<id:number>/", views.version_detail, name="version"),
    path("models/<id:pk>/versions/<id:number>/work/", views.version_work_partial, name="version_work"),
    path("models/<id:pk>/versions/<id:number>/evaluate/", views.version_evaluate, name="version_evaluate"),
    path("models/<id:pk>/versions/<id:number>/export/", views.version_export, name="version_export"),
]
