from django.urls import path

from apps.experiments import views

app_name = "experiments"

urlpatterns = [
    path("experiments/", views.experiment_list, name="list"),
    path("experiments/new/", views.experiment_create, name="create"),
    path("experiments/<id:pk>/", views.experiment_detail, name="detail"),
    path("experiments/<id:pk>/live/", views.experiment_live, name="live"),
    path("experiments/<id:pk>/trials.csv", views.experiment_csv, name="csv"),
    path("experiments/<id:pk>/cancel/", views.experiment_cancel, name="cancel"),
    path("experiments/<id:pk>/promote/", views.experiment_promote, name="promote"),
]
