"""``/ws/paper-trading/<account_id>/``: one account's live updates, for its owner only.

Connecting: the socket is accepted, then closed at once with a code a browser can read
(a handshake refused outright reaches scripts as an opaque 403/1006):

* 4401: not signed in (no session, no valid ``?token=``);
* 4404: the account is not yours, does not exist, or the id is malformed (indistinguishable).

The owner joins the account's group and receives every message of `messages` as it happens,
one message per frame; with ``?frames=batch`` in the URL, each frame is instead a JSON array of
the messages published together (a tick's thoughts, trades, positions, portfolio and metrics),
in order, which costs the server and the client one frame per tick instead of one per message
(replies to the client's own requests stay single objects).
Client messages are JSON objects with an ``action``:

* ``{"action": "snapshot"}`` -> one ``snapshot`` message (portfolio, bot status, the latest
  thoughts and trades). Ask for it after connecting: the socket is already in the group, so
  nothing is missed in between (updates may overlap the snapshot; ids tell them apart);
* ``{"action": "ping"}`` -> ``pong``;
* anything else -> an ``error`` message; the socket stays open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async  # type: ignore[import-untyped, unused-ignore]
from channels.generic.websocket import (  # type: ignore[import-untyped, unused-ignore]
    AsyncJsonWebsocketConsumer,
)
from django.contrib.auth.models import User
from django.http import Http404

from paper_trading.models import PaperTradingAccount
from paper_trading.observability.metrics import WEBSOCKET_CLIENTS
from paper_trading.realtime import messages as m
from paper_trading.realtime.publisher import HANDLER, account_group, register_serving_loop
from paper_trading.selectors.accounts import account_for

logger = logging.getLogger("paper_trading.realtime")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
#: Largest client message read, in characters; clients only send small requests.
MAX_CLIENT_MESSAGE = 4096


def _owned_account(user: User, account_id: str) -> PaperTradingAccount | None:
    try:
        uuid.UUID(account_id)
        return account_for(user, account_id)
    except (Http404, ValueError):
        return None


class PaperTradingConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    account_id: uuid.UUID | None = None
    group: str | None = None
    #: One frame per published batch (``?frames=batch``) instead of one per message.
    batched: bool = False

    async def connect(self) -> None:
        register_serving_loop(asyncio.get_running_loop())
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(CLOSE_UNAUTHENTICATED)
            return
        raw_id = str(self.scope["url_route"]["kwargs"].get("account_id", ""))
        account = await database_sync_to_async(_owned_account)(user, raw_id)
        if account is None:
            await self._refuse(CLOSE_NOT_FOUND)
            return
        self.account_id = account.account_id
        self.group = account_group(account.account_id)
        WEBSOCKET_CLIENTS.inc()  # paired with the dec in disconnect, which checks self.group
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.batched = query.get("frames", [""])[-1] == "batch"
        # In the group before the client learns it is connected: it misses nothing after that.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def _refuse(self, code: int) -> None:
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            WEBSOCKET_CLIENTS.dec()
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.group is None:
            return  # closing: not the owner
        if text_data is None or len(text_data) > MAX_CLIENT_MESSAGE:
            await self.send_json(m.error_message("bad_request", "send a small JSON text frame"))
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_json(m.error_message("bad_request", "not valid JSON"))
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        if action == "snapshot":
            await self.send_json(await self._snapshot())
        elif action == "ping":
            await self.send_json(m.pong_message())
        else:
            await self.send_json(
                m.error_message(
                    "unknown_action",
                    f"unknown action {str(action)[:50]!r}; send "
                    '{"action": "snapshot"} or {"action": "ping"}',
                )
            )

    async def _snapshot(self) -> m.Message:
        try:
            message: m.Message = await database_sync_to_async(_snapshot_of)(self.account_id)
            return message
        except Exception:
            logger.exception("realtime: snapshot of account %s failed", self.account_id)
            return m.error_message("snapshot_failed", "could not read the account; try again")

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections (a hop to a worker thread) before every
        # handler. Forwarding a published message never touches the database, and that hop,
        # once per socket per tick, was most of the fan-out's cost.
        if message.get("type") == HANDLER:
            await self.paper_message(message)
        else:
            await super().dispatch(message)

    async def paper_message(self, event: dict[str, Any]) -> None:
        """Messages sent to the account's group (see `publisher`): pass them on, as encoded."""
        if self.batched:
            await self.send(text_data=event["batch"])
            return
        for text in event["texts"]:
            await self.send(text_data=text)


def _snapshot_of(account_id: uuid.UUID | None) -> m.Message:
    if account_id is None:
        return m.error_message("not_found", "no account")
    account = PaperTradingAccount.objects.filter(pk=account_id).first()
    if account is None:
        return m.error_message("not_found", "the account no longer exists")
    return m.snapshot_message(account)
