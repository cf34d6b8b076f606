"""Oversize and malformed requests to every endpoint: a 4xx in the API's error shape, never a 500.

Every operation of the OpenAPI schema that takes a body gets bodies over
DATA_UPLOAD_MAX_MEMORY_SIZE, nesting 100,000 deep, wrong content types, invalid UTF-8, JSON that
is not an object, and out-of-range numbers in each numeric field; every query parameter of every
GET operation, and of every page, gets hostile values. Each answer must be a documented status
of its operation (pages: any status but a 5xx) and, from the API, name what was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from paper_trading.models import PaperTradingAccount
from paper_trading.services.accounts import create_account
from paper_trading.services.auth import create_api_token
from tests.paper_trading import sweep

pytestmark = pytest.mark.django_db

BODY_OPERATIONS = [op for op in sweep.api_operations() if op.body_schema is not None]


def numeric_fields(op: sweep.Operation) -> list[str]:
    """The body's fields that take a number (decimals travel as strings)."""
    properties = (op.body_schema or {}).get("properties", {})
    return [
        name
        for name, spec in properties.items()
        if sweep.resolve(spec).get("type") in ("integer", "number")
        or sweep.resolve(spec).get("format") == "decimal"
        or any(o.get("type") == "number" for o in sweep.resolve(spec).get("oneOf", []))
    ]


NUMERIC_OPERATIONS = [op for op in BODY_OPERATIONS if numeric_fields(op)]
GET_OPERATIONS = [op for op in sweep.api_operations() if op.method == "GET"]
HUGE_INTEGER = "9" * 5000  # beyond Python's 4300-digit limit for int("...")
#: JSON values out of every numeric field's range or precision.
HUGE_NUMBERS = [
    "1e400",
    "-1e400",
    "1e308",
    "123456789012345678901234567890",
    '"1e999999999"',
    '"-1e-999999999"',
    '"0.000000000000000000000000000001"',
]
#: Query values a client should never send.
HOSTILE_QUERY = ["", "%00", "%ff%fe", "%ed%a0%80", "9" * 5000, "-1", "1e999", "NaN", "x" * 10_000]


@pytest.fixture
def bob(db: None) -> Iterator[APIClient]:
    """A token-authenticated user whose account looks busy (a valid bot/start answers 409)."""
    user = User.objects.create_user("bob")
    sweep.pretend_bot_runs(create_account(user, "Bob's"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {create_api_token(user, 'fuzz')[1]}")
    yield client
    assert PaperTradingAccount.objects.filter(user=user).count() == 1  # nothing got through


def send(client: APIClient, op: sweep.Operation, body: Any, content_type: str) -> Any:
    cache.clear()  # throttle counters
    return client.generic(op.method, op.path, body, content_type=content_type)


def assert_refused(response: Any, op: sweep.Operation, status: int, *fragments: str) -> None:
    assert response.status_code == status, (op.label, response.status_code, response.content)
    assert status in op.statuses, f"{op.label} does not document {status}"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    for fragment in fragments:
        assert fragment in error["message"] or fragment in error["fields"], (op.label, error)


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=lambda op: op.label)
def test_bodies_over_the_size_limit_are_413(bob: APIClient, op: sweep.Operation) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = json.dumps({"name": "x" * limit, "message": "x", "signature": "0x"})
    response = send(bob, op, body, "application/json")
    assert_refused(response, op, 413, f"request body is larger than the limit of {limit} bytes")


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=lambda op: op.label)
def test_malformed_bodies_are_400_or_415(bob: APIClient, op: sweep.Operation) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    nested_40 = '{"strategy_params": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
    for too_deep in (deep, nested_40):
        response = send(bob, op, too_deep, "application/json")
        assert_refused(response, op, 400, "nested deeper than 32")
    too_long = '{"name": ' + HUGE_INTEGER + "}"
    broken = ['{"name": ', b'{"name": "\xff\xfe"}', "{'name': 'x'}", '{"name": NaN}', too_long]
    for unparsable in broken:
        response = send(bob, op, unparsable, "application/json")
        assert_refused(response, op, 400, "JSON parse error")
    for not_an_object in ("[]", '"text"', "1", "true", "[{}]"):
        response = send(bob, op, not_an_object, "application/json")
        assert_refused(response, op, 400, "Invalid data. Expected a dictionary")
    assert_refused(send(bob, op, "null", "application/json"), op, 400, "No data provided")
    for content_type in (
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json-patch+json",
    ):
        response = send(bob, op, "name=x", content_type)
        assert_refused(response, op, 415, "Unsupported media type")


@pytest.mark.parametrize("op", NUMERIC_OPERATIONS, ids=lambda op: op.label)
def test_out_of_range_numbers_name_their_field(bob: APIClient, op: sweep.Operation) -> None:
    for name in numeric_fields(op):
        for value in HUGE_NUMBERS:
            response = send(bob, op, f'{{"{name}": {value}}}', "application/json")
            assert_refused(response, op, 400, name)


@pytest.mark.parametrize("op", GET_OPERATIONS, ids=lambda op: op.label)
def test_hostile_query_values_are_not_server_errors(bob: APIClient, op: sweep.Operation) -> None:
    path = sweep.fill_path(op.path, lambda name: "WETH" if name == "token_symbol" else "x")
    for parameter in [p["name"] for p in op.parameters("query")] or ["unknown"]:
        for value in HOSTILE_QUERY:
            cache.clear()
            response = bob.get(f"{path}?{parameter}={value}")
            assert response.status_code in op.statuses, (op.label, parameter, value[:20])
            assert response.status_code != 500


def test_pages_survive_hostile_queries_and_bodies() -> None:
    """Every page without a path parameter: hostile query values, an oversize form body."""
    user = User.objects.create_user("carol")
    create_account(user, "Carol's")
    browser = Client()
    browser.force_login(user)
    names = {p["name"] for op in GET_OPERATIONS for p in op.parameters("query")}
    names |= {"before", "page", "figures", "next"}
    routes = [r for r in sweep.site_routes() if not sweep.api_route(r) and not r.parameters]
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    oversize = "name=" + "x" * limit
    for route in routes:
        url = route.url(lambda name: name)
        for value in HOSTILE_QUERY:
            query = "&".join(f"{name}={value}" for name in sorted(names))
            response = browser.get(f"{url}?{query}")
            assert response.status_code < 500, (url, value[:20], response.status_code)
        response = browser.generic(
            "POST", url, oversize, content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code < 500, (url, "oversize", response.status_code)
        if "_auth_user_id" not in browser.session:
            browser.force_login(user)


def test_sign_in_next_that_is_not_a_path_goes_to_the_dashboard() -> None:
    """A bare word was taken for a view name by redirect(): NoReverseMatch, a 500."""
    User.objects.create_user("dave", password="correct-horse-battery")
    browser = Client()
    form = {"username": "dave", "password": "correct-horse-battery", "next": "dashboard"}
    signed_in = browser.post("/paper-trading/login/", form)
    assert (signed_in.status_code, signed_in["Location"]) == (302, "/paper-trading/")
    for target in ("web-trades", "%ff%fe", "evil.example", "/paper-trading/trades/"):
        again = browser.get(f"/paper-trading/login/?next={target}")
        expected = target if target.startswith("/") else "/paper-trading/"
        assert (again.status_code, again["Location"]) == (302, expected)


@pytest.mark.parametrize("op", [op for op in BODY_OPERATIONS if op.public], ids=lambda op: op.label)
def test_sign_in_form_with_too_many_fields_is_400(op: sweep.Operation) -> None:
    """A browser's sign-in form is read for its CSRF token before the media type is refused."""
    browser = APIClient(enforce_csrf_checks=True)
    browser.get("/paper-trading/api/auth/nonce/")  # sets the csrftoken cookie
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    body = "&".join(f"f{i}=x" for i in range(limit + 1))
    response = send(browser, op, body, "application/x-www-form-urlencoded")
    assert_refused(response, op, 400, "The number of GET/POST parameters exceeded")
