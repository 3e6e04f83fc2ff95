"""Charlie's team with objects of every kind, and the API operations of the schema filled in with them.

The tenancy harness (tests/tenancy.py) already builds one of each object a URL can address
(a dataset with a ready version, a model with an evaluated, exported, aliased version, jobs
of every kind, an experiment with its trial, a deployment with a key, tokens, an invitation);
here every one of its routes is built once and the OpenAPI operations are matched to them,
so a test can call each operation on a real object.
"""

import re
from dataclasses import dataclass

from drf_spectacular.generators import SchemaGenerator

from tests.personas import World
from tests.tenancy import TENANT_ROUTES

PARAM = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Operation:
    method: str  # "GET"
    template: str  # "/api/v1/datasets/{dataset_pk}/versions/"
    spec: dict  # the operation object of the schema

    @property
    def is_list(self) -> bool:
        """A GET that answers many rows: a paginated page or a plain array."""
        schema = self.spec.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
        ref = schema.get("schema", {}).get("$ref", "")
        return self.method == "GET" and (
            ref.split("/")[-1].startswith("Paginated") or schema.get("schema", {}).get("type") == "array"
        )

    @property
    def query_params(self) -> set[str]:
        return {p["name"] for p in self.spec.get("parameters", []) if p["in"] == "query"}


def openapi_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def api_operations(schema: dict | None = None) -> list[Operation]:
    schema = schema or openapi_schema()
    return [
        Operation(method.upper(), template, spec)
        for template, item in schema["paths"].items()
        for method, spec in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def build_estate(world: World) -> list[str]:
    """Build every object of Charlie's team the tenancy harness knows; the URLs of its API routes."""
    return [route.url(world) for route in TENANT_ROUTES if route.is_api]


def estate_values(template: str, urls: list[str]) -> dict[str, str] | None:
    """Values of the template's parameters taken from one of the estate's URLs that fits it (None: none fits)."""
    names = PARAM.findall(template)
    escaped = re.escape(template.rstrip("/")).replace(r"\{", "{").replace(r"\}", "}")
    pattern = re.compile("^" + PARAM.sub("([^/]+)", escaped) + "/?$")  # predict takes either form
    for url in urls:
        match = pattern.match(url)
        if match:
            return dict(zip(names, match.groups(), strict=True))
    return None


def path_values(template: str, urls: list[str]) -> dict[str, str]:
    """The estate's values for the template, or 1 for each where nothing fits (nodes: shared, none here)."""
    values = estate_values(template, urls)
    return values if values is not None else dict.fromkeys(PARAM.findall(template), "1")


def fill(template: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], template)
