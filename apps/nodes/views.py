"""The Nodes page: each node with its GPUs as bars, its heartbeat age and what it runs."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import NotFound
from apps.core.pages import run_action
from apps.nodes import selectors, services

CHANGES = {"drain": services.node_drain, "undrain": services.node_undrain}


def _context(request) -> dict:
    views = selectors.node_views(request.user, list(selectors.nodes_with_gpus()))
    return {"nodes": views, "free_gpus": selectors.free_gpu_count(views), "can_drain": request.user.is_staff}


@login_required
def node_list(request, status=200):
    template = "nodes/_nodes.html" if request.htmx else "nodes/list.html"
    return render(request, template, _context(request), status=status)


@login_required
@require_POST
def node_drain(request, pk, action):
    if action not in CHANGES:
        raise Http404("No such action.")
    try:
        node = selectors.node_by_pk(pk)
    except NotFound:
        raise Http404("Node not found.") from None

    def apply():
        CHANGES[action](actor=request.user, node=node)
        return f"Node {node.name}: {action}ed."

    status = run_action(request, apply)
    return (
        redirect("nodes:list")
        if status == 200
        else render(request, "nodes/list.html", _context(request), status=status)
    )
