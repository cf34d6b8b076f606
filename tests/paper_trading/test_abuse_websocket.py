"""Authorization sweep of the websockets: every route, as another user and as nobody.

The routes come from `paper_trading.realtime.routing` (a new consumer is swept as soon as it is
routed); each is filled with Alice's ids and tried anonymously, with Bob's API token and with
Bob's session cookie: every attempt is closed (4401 / 4404) before a single message, while Alice
connects to the same URL. Connected to his own account, Bob hears nothing of hers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator  # type: ignore[import-untyped, unused-ignore]
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client

from dexproject.asgi import application
from paper_trading.models import PaperTradingAccount, PaperTradingSession
from paper_trading.realtime import messages as m
from paper_trading.realtime.publisher import publish_session_status
from paper_trading.realtime.routing import websocket_urlpatterns
from paper_trading.services.accounts import create_account
from paper_trading.services.auth import create_api_token
from tests.paper_trading import sweep
from tests.paper_trading.test_realtime import (  # noqa: F401 (in_memory_layer: autouse fixture)
    ORIGIN,
    close_code,
    in_memory_layer,
    opened,
    run,
)

pytestmark = pytest.mark.django_db(transaction=True)

CLOSE_UNAUTHENTICATED, CLOSE_NOT_FOUND = 4401, 4404


def socket_urls(account_id: str) -> list[str]:
    """Every websocket route, filled with the account's id."""

    def fill(name: str) -> str:
        if name == "account_id":
            return account_id
        pytest.fail(f"websocket route with an unknown parameter {name!r}: which object is it?")

    routes = [sweep.Route((p.pattern,), p.name, "") for p in websocket_urlpatterns]
    return [route.url(fill) for route in routes]


def connect(path: str, *, token: str | None = None, cookie: str | None = None) -> Any:
    headers = [(b"origin", ORIGIN.encode())]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    query = f"?token={token}" if token else ""
    return WebsocketCommunicator(application, f"{path}{query}", headers=headers)


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


def test_no_stranger_subscribes_to_alices_stream() -> None:
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    account = create_account(alice, "Alice's")
    create_account(bob, "Bob's")
    alice_key = create_api_token(alice, "ws")[1]
    bob_key = create_api_token(bob, "ws")[1]
    bob_cookie = session_cookie(bob)
    urls = socket_urls(str(account.account_id))
    assert urls

    async def scenario() -> list[tuple[str, str, int]]:
        codes = []
        for url in urls:
            for who, kwargs in (
                ("anonymous", {}),
                ("bob's token", {"token": bob_key}),
                ("bob's session", {"cookie": bob_cookie}),
                ("bob's session and a bad token", {"cookie": bob_cookie, "token": "dxp_x"}),
            ):
                codes.append((url, who, await close_code(connect(url, **kwargs))))
        return codes

    expected = {
        "anonymous": CLOSE_UNAUTHENTICATED,
        "bob's token": CLOSE_NOT_FOUND,
        "bob's session": CLOSE_NOT_FOUND,
        "bob's session and a bad token": CLOSE_UNAUTHENTICATED,  # never falls back to the cookie
    }
    wrong = [(url, who, code) for url, who, code in run(scenario) if code != expected[who]]
    assert not wrong

    async def owner() -> list[dict[str, Any]]:
        snapshots = []
        for url in urls:
            comm = await opened(connect(url, token=alice_key))
            await comm.send_json_to({"action": "snapshot"})
            snapshots.append(await comm.receive_json_from(timeout=10))
            await comm.disconnect()
        return snapshots

    for snapshot in run(owner):  # the same URLs open for Alice: the refusals were about Bob
        assert snapshot["type"] == m.SNAPSHOT
        assert snapshot["data"]["account"] == str(account.account_id)


def test_bob_hears_nothing_of_alice() -> None:
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    alice_account = create_account(alice, "Alice's secret book")
    bob_account = create_account(bob, "Bob's")
    session = PaperTradingSession.objects.create(account=alice_account, price_source="replay")
    [alice_url] = socket_urls(str(alice_account.account_id))
    [bob_url] = socket_urls(str(bob_account.account_id))
    alice_key = create_api_token(alice, "ws")[1]
    bob_key = create_api_token(bob, "ws")[1]

    async def scenario() -> tuple[dict[str, Any], bool, dict[str, Any]]:
        hers = await opened(connect(alice_url, token=alice_key))
        his = await opened(connect(bob_url, token=bob_key))
        sent = await asyncio.to_thread(publish_session_status, session, m.STARTED)
        assert sent
        heard = await hers.receive_json_from(timeout=10)
        silent = await his.receive_nothing(timeout=0.5)
        # Asking for "a snapshot of her account" still gets his own.
        await his.send_json_to({"action": "snapshot", "account": str(alice_account.pk)})
        snapshot = await his.receive_json_from(timeout=10)
        await hers.disconnect()
        await his.disconnect()
        return heard, silent, snapshot

    heard, silent, snapshot = run(scenario)
    assert heard["type"] == m.BOT_STATUS
    assert heard["data"]["session"]["session_id"] == str(session.session_id)
    assert silent, "Bob's socket received Alice's bot status"
    assert snapshot["data"]["account"] == str(bob_account.account_id)
    text = str(snapshot)
    for secret in (str(alice_account.account_id), alice_account.name, str(session.session_id)):
        assert secret not in text
    assert PaperTradingAccount.objects.filter(user=bob).count() == 1
