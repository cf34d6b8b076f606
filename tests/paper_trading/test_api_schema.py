"""The OpenAPI schema is complete and valid, and the docs page works without a CDN."""

from __future__ import annotations

import io
import re

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def test_schema_validates_with_no_warnings() -> None:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    paths = schema["paths"]
    for path in (
        "/paper-trading/api/portfolio/",
        "/paper-trading/api/trades/",
        "/paper-trading/api/bot/start/",
        "/paper-trading/api/auth/siwe/",
        "/paper-trading/api/prices/{token_symbol}/",
    ):
        assert path in paths
    # Every operation documents its error responses with the shared error shape.
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            errors = [c for c in operation["responses"] if c.startswith("4")]
            assert errors, f"{method.upper()} {path} documents no 4xx"
    assert "apiToken" in schema["components"]["securitySchemes"]


def test_docs_page_serves_swagger_ui_from_this_server(client: Client) -> None:
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html
    assert "/static/drf_spectacular_sidecar/" in html
    assert client.get("/api/schema/").status_code == 200


def _patterns(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [p for v in node.values() for p in _patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


def test_decimal_patterns_admit_exactly_what_the_api_parses(client: Client) -> None:
    """A schema-valid decimal string is never refused: "", "-" and "." do not match."""
    schema = yaml.safe_load(client.get("/api/schema/").content)
    configuration = schema["components"]["schemas"]["PatchedConfigurationRequest"]
    pattern = configuration["properties"]["stop_loss_percent"]["pattern"]
    assert all(re.fullmatch(pattern, s) for s in ("5", "5.", ".5", "12.25", "-0.5"))
    assert not any(re.fullmatch(pattern, s) for s in ("", "-", ".", "-.", "5.123", "12345"))
    decimal_patterns = [p for p in _patterns(schema) if "\\d" in p]
    assert decimal_patterns
    assert not any(re.fullmatch(p, "") for p in decimal_patterns)
