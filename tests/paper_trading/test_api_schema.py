"""The OpenAPI schema is complete and valid, and the docs page works without a CDN."""

from __future__ import annotations

import io

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
