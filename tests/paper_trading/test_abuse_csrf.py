"""CSRF on every unsafe request: browsers (cookie sessions) need the token, scripts do not.

Every unsafe operation of the OpenAPI schema, and a POST to every URL pattern of the site, is
sent by a signed-in browser that enforces CSRF (Django's test client with
enforce_csrf_checks=True) without the token: each is refused with 403 naming CSRF and changes
nothing. The same requests with the token, or from a script with an API token and no cookie,
are not refused for CSRF. The sign-in operations need the token from anyone (login CSRF).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from paper_trading.services.accounts import create_account
from paper_trading.services.auth import create_api_token
from tests.paper_trading import sweep

pytestmark = pytest.mark.django_db

NONCE = "/paper-trading/api/auth/nonce/"
UNSAFE_OPERATIONS = [op for op in sweep.api_operations() if op.method in sweep.UNSAFE]


@pytest.fixture
def erin() -> User:
    """A user whose account looks busy (a bot/start that got through would answer 409)."""
    user = User.objects.create_user("erin")
    sweep.pretend_bot_runs(create_account(user, "Erin's"))
    return user


def browser(user: User | None) -> tuple[Client, str]:
    """A browser enforcing CSRF, signed in as `user`, and its CSRF token."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    token = client.get(NONCE).cookies["csrftoken"].value
    return client, token


def unsafe(client: Client, method: str, url: str, **headers: str) -> Any:
    cache.clear()  # throttle counters
    return client.generic(method, url, "{}", content_type="application/json", headers=headers)


def _fill(name: str) -> str:
    return "00000000-0000-4000-8000-000000000000" if name.endswith("_id") else "x"


def assert_csrf_refusal(response: Any, what: str) -> None:
    assert response.status_code == 403, (what, response.status_code, response.content[:200])
    assert b"CSRF" in response.content, what


def test_api_refuses_cookie_sessions_without_the_token(erin: User) -> None:
    client, token = browser(erin)
    for op in UNSAFE_OPERATIONS:
        before = sweep.holdings(erin.pk)
        url = sweep.fill_path(op.path, _fill)
        refused = unsafe(client, op.method, url)
        assert_csrf_refusal(refused, op.label)
        assert refused.json()["error"]["code"] == "permission_denied"
        assert 403 in op.statuses, f"{op.label} does not document its CSRF refusal"
        assert sweep.holdings(erin.pk) == before, f"{op.label} changed something without the token"
        accepted = unsafe(client, op.method, url, X_CSRFToken=token)
        assert accepted.status_code != 403, (op.label, accepted.content[:200])
        if "_auth_user_id" not in client.session:  # that was logout
            client, token = browser(erin)


def test_api_scripts_with_a_token_need_no_csrf_token(erin: User) -> None:
    script = APIClient(enforce_csrf_checks=True)
    script.credentials(HTTP_AUTHORIZATION=f"Token {create_api_token(erin, 'script')[1]}")
    for op in UNSAFE_OPERATIONS:
        response = unsafe(script, op.method, sweep.fill_path(op.path, _fill))
        if op.public:  # signing in is CSRF-protected whoever asks
            assert_csrf_refusal(response, op.label)
        else:
            assert response.status_code != 403, (op.label, response.content[:200])


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed in", "anonymous"])
def test_every_page_refuses_a_post_without_the_token(erin: User, signed_in: bool) -> None:
    client, token = browser(erin if signed_in else None)
    form = {"name": "csrf-probe", "stop_loss_percent": "1", "username": "erin"}
    for route in sweep.site_routes():
        if sweep.api_route(route):
            continue
        url = route.url(_fill)
        before = sweep.holdings(erin.pk)
        refused = client.post(url, form)
        # Refused before doing anything: no POST handler (405) or no form parser (415).
        if refused.status_code not in (405, 415):
            assert_csrf_refusal(refused, url)
        assert sweep.holdings(erin.pk) == before, f"POST {url} changed something without the token"
        with_token = client.post(url, form, headers={"X-CSRFToken": token})
        assert not (with_token.status_code == 403 and b"CSRF" in with_token.content), url
        if signed_in and "_auth_user_id" not in client.session:
            client, token = browser(erin)
