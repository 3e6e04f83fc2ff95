"""The navigation bar, defined once. Each entry: label, URL name, path prefix that marks it active."""

from django.urls import reverse

NAVIGATION = [
    ("Dashboard", "dashboard:home"),
    ("Datasets", "datasets:list"),
    ("Models", "registry:list"),
    ("Jobs", "jobs:list"),
    ("Experiments", "experiments:list"),
    ("Nodes", "nodes:list"),
    ("Deployments", "deployments:list"),
    ("Team", "accounts:current_team"),
]


def navigation(request):
    # Handlers outside the middleware (e.g. the static files handler's 404) have no user.
    if not getattr(getattr(request, "user", None), "is_authenticated", False):
        return {}
    items = []
    for label, url_name in NAVIGATION:
        url = reverse(url_name)
        active = request.path == url if url == "/" else request.path.startswith(url)
        if label == "Team":
            active = request.path.startswith("/team")
        items.append({"label": label, "url": url, "active": active})
    return {"nav_items": items}
