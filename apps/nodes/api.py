"""REST API of nodes: list, get, drain and undrain (operators only)."""

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api.views import ScopedQuerysetMixin
from apps.nodes import selectors, services
from apps.nodes.models import Node
from apps.nodes.serializers import NodeSerializer


class NodeFilter(filters.FilterSet):
    pool = filters.CharFilter()
    status = filters.ChoiceFilter(choices=Node.Status.choices)

    class Meta:
        model = Node
        fields = ["pool", "status"]


class NodeViewSet(ScopedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every node of the installation with its GPUs (shared by all teams; your jobs are named)."""

    model = Node
    serializer_class = NodeSerializer
    filterset_class = NodeFilter
    ordering_fields = ["name", "pool", "last_heartbeat_at"]

    def scoped_queryset(self):
        return selectors.nodes_with_gpus()

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(NodeSerializer(selectors.node_views(request.user, page), many=True).data)

    def retrieve(self, request, pk=None):
        return Response(NodeSerializer(selectors.node_views(request.user, [self.get_object()])[0]).data)

    @extend_schema(request=None, responses=NodeSerializer)
    @action(detail=True, methods=["post"])
    def drain(self, request, pk=None):
        node = services.node_drain(actor=request.user, node=self.get_object())
        return Response(NodeSerializer(selectors.node_views(request.user, [node])[0]).data)

    @extend_schema(request=None, responses=NodeSerializer)
    @action(detail=True, methods=["post"])
    def undrain(self, request, pk=None):
        node = services.node_undrain(actor=request.user, node=self.get_object())
        return Response(NodeSerializer(selectors.node_views(request.user, [node])[0]).data)
