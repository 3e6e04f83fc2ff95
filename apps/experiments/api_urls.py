from rest_framework.routers import SimpleRouter

from apps.experiments import api

router = SimpleRouter(trailing_slash=True)
router.register("experiments", api.ExperimentViewSet, basename="experiment")
router.register(r"experiments/(?P<experiment_pk>[0-9]+)/trials", api.TrialViewSet, basename="experiment-trial")

urlpatterns = router.urls
