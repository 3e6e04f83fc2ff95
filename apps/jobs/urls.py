from django.urls import path

from apps.jobs import views

app_name = "jobs"

urlpatterns = [
    path("jobs/", views.job_list, name="list"),
    path("jobs/<int:pk>/", views.job_detail, name="detail"),
    path("jobs/<int:pk>/live/", views.job_live, name="live"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="cancel"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="retry"),
    path("models/<int:pk>/train/", views.model_train, name="train"),
]
