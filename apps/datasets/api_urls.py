from rest_framework.routers import SimpleRouter

from apps.datasets import api

router = SimpleRouter(trailing_slash=True)
router.register("datasets", api.DatasetViewSet, basename="dataset")
router.register(r"datasets/(?P<dataset_pk>[0-9]+)/versions", api.VersionViewSet, basename="dataset-version")

urlpatterns = router.urls
