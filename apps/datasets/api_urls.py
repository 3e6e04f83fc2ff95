from rest_framework.routers import SimpleRouter

from apps.core.converters import ID_REGEX
from apps.datasets import api

router = SimpleRouter(trailing_slash=True)
router.register("datasets", api.DatasetViewSet, basename="dataset")
router.register(rf"datasets/(?P<dataset_pk>{ID_REGEX})/versions", api.VersionViewSet, basename="dataset-version")

urlpatterns = router.urls
