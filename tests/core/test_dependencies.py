"""Dependencies point one way (../shared/DESIGN.md): accounts <- datasets <- registry <- jobs <- experiments, deployments.

jobs also builds on nodes. An app importing one above it (even inside a function) fails here,
so the port in apps/core/work.py stays the only way datasets and the registry reach jobs.
"""

import ast
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parents[2] / "apps"
ABOVE = {
    "core": {"accounts", "datasets", "registry", "nodes", "jobs", "experiments", "deployments", "dashboard"},
    "accounts": {"datasets", "registry", "nodes", "jobs", "experiments", "deployments", "dashboard"},
    "datasets": {"registry", "nodes", "jobs", "experiments", "deployments", "dashboard"},
    "registry": {"nodes", "jobs", "experiments", "deployments", "dashboard"},
    "nodes": {"jobs", "experiments", "deployments", "dashboard"},
    "jobs": {"experiments", "deployments", "dashboard"},
}


def _imported_apps(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {name.split(".")[1] for name in names if name.startswith("apps.") and name.count(".") >= 1}
    return found


@pytest.mark.parametrize("app", sorted(ABOVE))
def test_an_app_imports_nothing_of_the_apps_above_it(app):
    offenders = {
        str(path.relative_to(APPS)): sorted(_imported_apps(path) & ABOVE[app])
        for path in (APPS / app).rglob("*.py")
        if "migrations" not in path.parts
    }
    assert {path: apps for path, apps in offenders.items() if apps} == {}
