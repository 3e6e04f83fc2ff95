from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.core.converters import ID_REGEX
from apps.registry import api

MODEL = rf"models/(?P<model_pk>{ID_REGEX})"
VERSION = rf"{MODEL}/versions/(?P<version_number>{ID_REGEX})"

router = SimpleRouter(trailing_slash=True)
router.register("models", api.ModelViewSet, basename="model")
router.register(rf"{MODEL}/versions", api.VersionViewSet, basename="model-version")
router.register(rf"{VERSION}/evaluations", api.EvaluationViewSet, basename="model-version-evaluation")
router.register(rf"{VERSION}/exports", api.ExportViewSet, basename="model-version-export")
router.register(rf"{MODEL}/aliases", api.AliasViewSet, basename="model-alias")

urlpatterns = [path("architectures/", api.ArchitectureCatalogView.as_view(), name="architectures"), *router.urls]
