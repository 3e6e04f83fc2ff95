from django.urls import re_path
from rest_framework.routers import SimpleRouter

from apps.deployments import api

router = SimpleRouter(trailing_slash=True)
router.register("deployments", api.DeploymentViewSet, basename="deployment")
router.register(r"deployments/(?P<deployment_pk>[0-9]+)/keys", api.DeploymentKeyViewSet, basename="deployment-key")

urlpatterns = [
    # POST /api/v1/deployments/<id>/predict (a trailing slash is accepted too)
    re_path(r"^deployments/(?P<pk>[0-9]+)/predict/?$", api.PredictView.as_view(), name="deployment-predict"),
    *router.urls,
]
