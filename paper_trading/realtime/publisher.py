"""Send each tick (and each session change) to the account's websocket group.

`ChannelsPublisher` is an event sink: put it after the `DjangoStore`, so a client is only told
about a tick that is already durable (and a snapshot it asks for next includes it). It never
raises into the bot loop: if the channel layer fails, it logs and the bot carries on.

The in-memory channel layer (the default without Redis) only works inside one process, and its
queues belong to the event loop the websockets are served on. A bot thread must not touch them
from its own event loop (the server would not wake up to deliver), so with that layer the
messages are sent on the serving loop, which each consumer registers when it connects. With
channels-redis, any process can send from anywhere, and the bot runs in its own process or
thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import (  # type: ignore[import-untyped, unused-ignore]
    InMemoryChannelLayer,
    get_channel_layer,
)

from paper_trading.engine.events import EventSink, PriceFeedChanged, TickResult
from paper_trading.models import PaperTradingSession

if TYPE_CHECKING:
    from paper_trading.realtime.messages import Message

logger = logging.getLogger("paper_trading.realtime")

#: The consumer method (``paper_message``) that forwards a group message to its socket.
HANDLER = "paper.message"
#: Longest a tick's messages may take to send before the bot gives up on them.
SEND_TIMEOUT_SECONDS = 5.0

_serving_loop: asyncio.AbstractEventLoop | None = None
_background: set[asyncio.Task[None]] = set()


def account_group(account_id: uuid.UUID | str) -> str:
    """The channel layer group of an account's sockets (ValueError if not a UUID)."""
    return f"paper_trading.{uuid.UUID(str(account_id)).hex}"


def register_serving_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by each consumer as it connects: the loop that serves the websockets."""
    global _serving_loop
    _serving_loop = loop


def _live_serving_loop() -> asyncio.AbstractEventLoop | None:
    loop = _serving_loop
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


def _run(send: Callable[[], Awaitable[None]], layer: Any) -> None:
    """Run the sends where the layer needs them; wait for them unless called from async code."""

    async def bounded() -> None:
        await asyncio.wait_for(send(), SEND_TIMEOUT_SECONDS)

    try:
        current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    serving = _live_serving_loop() if isinstance(layer, InMemoryChannelLayer) else None
    if serving is not None:
        future = asyncio.run_coroutine_threadsafe(bounded(), serving)
        if current is not None:  # an event loop must never block: send alongside
            future.add_done_callback(_log_failure)
            return
        try:
            future.result(SEND_TIMEOUT_SECONDS + 1)
        except BaseException:
            future.cancel()
            raise
        return
    if current is not None:
        task = current.create_task(bounded())
        _background.add(task)
        task.add_done_callback(_background.discard)
        task.add_done_callback(_log_failure)
        return
    async_to_sync(bounded)()


def _log_failure(future: asyncio.Future[None] | concurrent.futures.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("realtime: could not publish", exc_info=future.exception())


def heard(group: str) -> bool:
    """Whether a message to `group` may reach a socket; checked before any message is built.

    The in-memory layer only reaches this process's sockets, so an empty group there means no
    one to tell (always so for `manage.py run_paper_bot`, a process of its own): the bot then
    builds no messages and never loads the REST serializers they are made with (~20 MB). A
    shared layer (Redis) may have listeners anywhere; a broken or missing one is reported by
    `send_to_group`.
    """
    try:
        layer = get_channel_layer()
    except Exception:
        return True
    return not isinstance(layer, InMemoryChannelLayer) or bool(layer.groups.get(group))


def send_to_group(group: str, messages: Sequence[Message]) -> bool:
    """Send messages to a group in order; False (logged) if the layer failed. Never raises."""
    if not messages:
        return True
    try:
        layer = get_channel_layer()
        if layer is None:
            logger.debug(
                "realtime: no CHANNEL_LAYERS configured; %d message(s) dropped", len(messages)
            )
            return False

        # Encoded once here, not once per socket by every consumer; one group message for the
        # lot, so the layer wakes each socket once per tick rather than once per message.
        texts = [json.dumps(message, separators=(",", ":")) for message in messages]
        event = {"type": HANDLER, "texts": texts, "batch": f"[{','.join(texts)}]"}

        async def send() -> None:
            await layer.group_send(group, event)

        _run(send, layer)
    except Exception:
        logger.warning(
            "realtime: could not publish %d message(s) to %s", len(messages), group, exc_info=True
        )
        return False
    return True


class ChannelsPublisher(EventSink):
    """The event sink that shows each tick to the account owner's open websockets."""

    def __init__(self, account_id: uuid.UUID, session_id: uuid.UUID) -> None:
        self.account_id = account_id
        self.session_id = session_id
        self.group = account_group(account_id)

    def publish(self, result: TickResult) -> None:
        if not heard(self.group):
            return
        from paper_trading.realtime import messages as m  # only with a listener: see heard()

        try:
            session = None
            if result.of_type(PriceFeedChanged):
                session = PaperTradingSession.objects.filter(pk=self.session_id).first()
            messages = m.tick_messages(
                result, account_id=self.account_id, session_id=self.session_id, session=session
            )
        except Exception:
            logger.warning(
                "realtime: could not build the messages of tick %s",
                result.tick_number,
                exc_info=True,
            )
            return
        send_to_group(self.group, messages)


def publish_session_status(session: PaperTradingSession, event: str) -> bool:
    """Tell the account's sockets a session started, restarted, stopped, completed or failed.

    Sends a `bot_status` (the session as stored: pass it after saving), then an `alert` if the
    session has ended. Never raises; False if nothing could be sent.
    """
    try:
        group = account_group(session.account_id)
        if not heard(group):
            return True
        from paper_trading.realtime import messages as m  # only with a listener: see heard()

        messages = [m.bot_status_message(session, event)]
        ended = m.session_end_alert(session)
        if ended is not None:
            messages.append(ended)
    except Exception:
        logger.warning("realtime: could not describe session %s", session.pk, exc_info=True)
        return False
    return send_to_group(group, messages)
