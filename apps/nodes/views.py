"""The Nodes page: each node with its GPUs as bars, its heartbeat age and what it runs."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_POST

from apps.core.pages import attempt, found_or_404, redirect_or_page
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
    node = found_or_404(selectors.node_by_pk, pk)
    outcome = attempt(
        request, lambda: CHANGES[action](actor=request.user, node=node), success=f"Node {node.name}: {action}ed."
    )
    return redirect_or_page(
        request,
        outcome,
        "nodes:list",
        lambda status: render(request, "nodes/list.html", _context(request), status=status),
    )
