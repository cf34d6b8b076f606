"""What the abuse tests sweep: every endpoint, and everything a user owns.

Endpoints are enumerated, not named: the OpenAPI schema's operations and the site's URL
patterns, so an endpoint added later is swept as soon as it exists. Filling a URL is the
caller's business (`Route.url`, `fill_path`): a parameter it cannot fill stops the sweep with a
message naming the parameter and the route. A user's rows are found through the models' foreign
keys (`holdings`), so a new model is watched too.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.apps import apps
from django.contrib.auth.models import User
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import LocalePrefixPattern, RegexPattern, RoutePattern
from django.utils import timezone

from paper_trading.models import PaperTradingAccount, PaperTradingSession

#: Methods a sweep tries on every URL, documented or not.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Filler = Callable[[str], str]
Segment = RoutePattern | RegexPattern | LocalePrefixPattern


@cache
def openapi() -> dict[str, Any]:
    """The API's OpenAPI document, as /api/schema/ serves it."""
    from drf_spectacular.generators import SchemaGenerator

    generator = SchemaGenerator()  # type: ignore[no-untyped-call]
    document: dict[str, Any] = generator.get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
    return document


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """A schema object with its `$ref` (and a single-entry allOf/oneOf) followed."""
    while True:
        options = node.get("allOf") or node.get("oneOf") or []
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            node = openapi()["components"]["schemas"][name]
        elif len(options) == 1:
            node = options[0]
        else:
            return node


@dataclass(frozen=True)
class Operation:
    """One documented method on one path of the API."""

    method: str
    path: str
    spec: dict[str, Any] = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def public(self) -> bool:
        """Documented as open to anonymous callers (an empty security requirement)."""
        return {} in self.spec.get("security", [])

    @property
    def statuses(self) -> set[int]:
        return {int(code) for code in self.spec["responses"]}

    def parameters(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p["in"] == where]

    @property
    def body_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        return resolve(schema) if schema else None


def api_operations() -> list[Operation]:
    return [
        Operation(method.upper(), path, spec)
        for path, methods in openapi()["paths"].items()
        for method, spec in methods.items()
        if method != "parameters"
    ]


def fill_path(template: str, fill: Filler) -> str:
    """An OpenAPI path template (``/x/{name}/``) with each parameter filled."""
    return re.sub(r"\{(\w+)\}", lambda m: fill(m[1]), template)


def minimal_value(schema: dict[str, Any]) -> Any:
    """The plainest value a property schema accepts (for required fields of a request body)."""
    schema = resolve(schema)
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    kind = schema.get("type")
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number" or (kind == "string" and "pattern" in schema):
        return "1"
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "abuse-probe"


# -- URL patterns ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One URL pattern of the site, with the patterns of the includes it sits under."""

    segments: tuple[Segment, ...]
    name: str | None
    namespace: str

    @property
    def route(self) -> str:
        """The pattern as written, prefixes joined (e.g. ``paper-trading/thoughts/<uuid:...>/``)."""
        return "".join(str(s) for s in self.segments)

    @property
    def parameters(self) -> list[str]:
        names: list[str] = []
        for segment in self.segments:
            if isinstance(segment, RoutePattern):
                names += list(segment.converters)
            else:
                names += list(segment.regex.groupindex)
        return names

    def url(self, fill: Filler) -> str:
        """A concrete URL for the pattern, each parameter from `fill`."""
        parts = []
        for segment in self.segments:
            text = str(segment)
            if isinstance(segment, RoutePattern):
                parts.append(re.sub(r"<(?:\w+:)?(\w+)>", lambda m: fill(m[1]), text))
            else:
                text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: fill(m[1]), text)
                parts.append(text.lstrip("^").rstrip("$").replace("\\", ""))
        return "/" + "".join(parts)


def _walk(
    patterns: list[URLPattern | URLResolver], prefix: tuple[Segment, ...], namespace: str
) -> Iterator[Route]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, (*prefix, pattern.pattern), inner)
        else:
            yield Route((*prefix, pattern.pattern), pattern.name, namespace)


def site_routes() -> list[Route]:
    """Every URL pattern of ROOT_URLCONF, the API's included."""
    return list(_walk(get_resolver().url_patterns, (), ""))


def api_route(route: Route) -> bool:
    return route.route.startswith("paper-trading/api/")


# -- what a user owns --------------------------------------------------------------------------


def owner_lookup(model: type[models.Model]) -> str | None:
    """The lookup from the model's rows to the user owning them, if they have one."""
    if model is User:
        return "pk"
    names = {f.name for f in model._meta.concrete_fields}
    return "user" if "user" in names else "account__user" if "account" in names else None


def _owned(user_id: int) -> Iterator[tuple[type[models.Model], Any]]:
    """Each model with rows that can belong to a user, and the user's rows of it."""
    candidates: list[type[models.Model]] = [
        User,
        *apps.get_app_config("paper_trading").get_models(),
    ]
    for model in candidates:
        if owner := owner_lookup(model):
            yield model, model._default_manager.filter(**{owner: user_id}).order_by("pk")


def holdings(user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row of every model that belongs to the user, found through its foreign keys."""
    return {model.__name__: list(rows.values()) for model, rows in _owned(user_id)}


def owned_ids(user_id: int) -> set[str]:
    """The ids (UUID primary keys) of every row the user owns."""
    return {
        str(pk)
        for _, rows in _owned(user_id)
        for pk in rows.values_list("pk", flat=True)
        if isinstance(pk, uuid.UUID)
    }


def pretend_bot_runs(account: PaperTradingAccount) -> PaperTradingSession:
    """A session of this process marked running: starts answer 409, no bot thread ever starts."""
    return PaperTradingSession.objects.create(
        account=account,
        name="keeps bot/start from starting a thread",
        price_source=PaperTradingSession.PriceSource.REPLAY,
        worker_host=socket.gethostname(),
        worker_pid=os.getpid(),
        heartbeat_at=timezone.now(),
        starting_balance_usd=account.current_balance_usd,
    )
