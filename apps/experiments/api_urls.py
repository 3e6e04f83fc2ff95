from rest_framework.routers import SimpleRouter

from apps.core.converters import ID_REGEX
from apps.experiments import api

router = SimpleRouter(trailing_slash=True)
router.register("experiments", api.ExperimentViewSet, basename="experiment")
router.register(rf"experiments/(?P<experiment_pk>{ID_REGEX})/trials", api.TrialViewSet, basename="experiment-trial")

urlpatterns = router.urls
