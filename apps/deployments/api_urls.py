from django.urls import re_path
from rest_framework.routers import SimpleRouter

from apps.core.converters import ID_REGEX
from apps.deployments import api

router = SimpleRouter(trailing_slash=True)
router.register("deployments", api.DeploymentViewSet, basename="deployment")
router.register(rf"deployments/(?P<deployment_pk>{ID_REGEX})/keys", api.DeploymentKeyViewSet, basename="deployment-key")

urlpatterns = [
    # POST /api/v1/deployments/<id>/predict (a trailing slash is accepted too)
    re_path(rf"^deployments/(?P<pk>{ID_REGEX})/predict/?$", api.PredictView.as_view(), name="deployment-predict"),
    *router.urls,
]
