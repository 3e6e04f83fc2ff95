from django.urls import path

from apps.jobs import views

app_name = "jobs"

urlpatterns = [
    path("jobs/", views.job_list, name="list"),
    path("jobs/<id:pk>/", views.job_detail, name="detail"),
    path("jobs/<id:pk>/live/", views.job_live, name="live"),
    path("jobs/<id:pk>/cancel/", views.job_cancel, name="cancel"),
    path("jobs/<id:pk>/retry/", views.job_retry, name="retry"),
    path("models/<id:pk>/train/", views.model_train, name="train"),
]
