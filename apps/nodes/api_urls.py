from rest_framework.routers import SimpleRouter

from apps.nodes import api

router = SimpleRouter(trailing_slash=True)
router.register("nodes", api.NodeViewSet, basename="node")

urlpatterns = router.urls
