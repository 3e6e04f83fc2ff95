from django.urls import path

from apps.experiments import views

app_name = "experiments"

urlpatterns = [
    path("experiments/", views.experiment_list, name="list"),
    path("experiments/new/", views.experiment_create, name="create"),
    path("experiments/<int:pk>/", views.experiment_detail, name="detail"),
    path("experiments/<int:pk>/live/", views.experiment_live, name="live"),
    path("experiments/<int:pk>/trials.csv", views.experiment_csv, name="csv"),
    path("experiments/<int:pk>/cancel/", views.experiment_cancel, name="cancel"),
    path("experiments/<int:pk>/promote/", views.experiment_promote, name="promote"),
]
