from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.jobs import api

router = SimpleRouter(trailing_slash=True)
router.register("jobs", api.JobViewSet, basename="job")

urlpatterns = [path("job-kinds/", api.JobKindListView.as_view(), name="job-kind-list"), *router.urls]
