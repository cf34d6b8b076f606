"""Live updates over websockets, through the real ASGI application and real bot ticks."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers  # type: ignore[import-untyped, unused-ignore]
from channels.testing import WebsocketCommunicator  # type: ignore[import-untyped, unused-ignore]
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone

from dexproject.asgi import application
from paper_trading.api.serializers import ThoughtSerializer, TradeSerializer
from paper_trading.engine.events import (
    EngineCounters,
    PortfolioSnapshot,
    PriceFeedChanged,
    TickResult,
)
from paper_trading.models import (
    ApiToken,
    PaperAIThoughtLog,
    PaperStrategyConfiguration,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
)
from paper_trading.realtime import messages as m
from paper_trading.realtime import publisher
from paper_trading.realtime.messages import tick_messages
from paper_trading.realtime.publisher import (
    ChannelsPublisher,
    account_group,
    publish_session_status,
)
from paper_trading.services.accounts import create_account
from paper_trading.services.auth import create_api_token
from paper_trading.services.bot import BotSettings, build_loop, finish_session, start_session
from tests.paper_trading.live_support import BuyWethEveryTick, TickHook

pytestmark = pytest.mark.django_db(transaction=True)

T = TypeVar("T")
Message = dict[str, Any]

PASSWORD = "correct-horse-battery"
TICKS = 21  # metrics come every 20 ticks
IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _origin() -> str:
    """An Origin the AllowedHostsOriginValidator accepts (it read ALLOWED_HOSTS at import)."""
    host = next((h for h in django_settings.ALLOWED_HOSTS if h != "testserver"), "*")
    host = "localhost" if host == "*" else host.lstrip(".")
    return f"http://{host}"


ORIGIN = _origin()


@pytest.fixture(autouse=True)
def in_memory_layer(settings: Any) -> Iterator[None]:
    settings.CHANNEL_LAYERS = IN_MEMORY  # the setting_changed signal resets channels' layers
    yield
    channel_layers.backends.clear()


@pytest.fixture
def redis_layer(settings: Any) -> str:
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set (CI starts a Redis server and sets it)")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [url], "prefix": f"test-{uuid.uuid4().hex[:12]}"},
        }
    }
    return url


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice", "alice@example.com", PASSWORD)


@pytest.fixture
def account(alice: User) -> PaperTradingAccount:
    return create_account(alice, "Main")


@pytest.fixture
def token(alice: User) -> str:
    return create_api_token(alice, "websocket")[1]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return async_to_sync(scenario)()


def socket(
    account_id: object, *, token: str | None = None, cookie: str | None = None, origin: str = ORIGIN
) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())] if origin else []
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    path = f"/ws/paper-trading/{account_id}/" + (f"?token={token}" if token else "")
    return WebsocketCommunicator(application, path, headers=headers)


async def opened(comm: WebsocketCommunicator) -> WebsocketCommunicator:
    connected, _ = await comm.connect(timeout=10)
    assert connected
    return comm


async def close_code(comm: WebsocketCommunicator) -> int:
    """The code the server closed with: right after accepting, or (origin check) at once."""
    connected, code = await comm.connect(timeout=10)
    if connected:
        out = await comm.receive_output(timeout=10)
        assert out["type"] == "websocket.close", out
        code = out["code"]
    await comm.disconnect()
    return int(code)


async def receive_until(
    comm: WebsocketCommunicator, done: Callable[[Message], bool], timeout: float = 30
) -> list[Message]:
    received: list[Message] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await comm.receive_json_from(timeout=max(0.1, deadline - loop.time()))
        received.append(message)
        if done(message):
            return received


def is_session_end(message: Message) -> bool:
    return bool(message["type"] == m.ALERT and message["data"]["kind"] == m.SESSION_ENDED)


def _run_bot(account_id: uuid.UUID, ticks: int, results: list[TickResult]) -> uuid.UUID:
    """A replay bot in its own thread, as the web process runs one; buys WETH every tick."""
    try:
        account = PaperTradingAccount.objects.get(pk=account_id)
        session = start_session(account, BotSettings(intel_level=10, speed=None))
        publish_session_status(session, m.STARTED)
        loop = build_loop(session, threading.Event(), max_ticks=ticks)
        loop.analyzer.strategy = BuyWethEveryTick()
        if not any(isinstance(sink, ChannelsPublisher) for sink in loop.sinks):
            loop.sinks = [*loop.sinks, ChannelsPublisher(account.account_id, session.session_id)]
        loop.sinks = [*loop.sinks, TickHook(results.append)]
        outcome = loop.run()
        publish_session_status(finish_session(session, outcome), m.STOPPED)
        return session.session_id
    finally:
        connection.close()


def _json(data: Any) -> Any:
    """What a client decodes from the REST API's JSON."""
    from rest_framework.renderers import JSONRenderer

    return json.loads(JSONRenderer().render(data))


RANK = {
    m.THOUGHT_LOG_CREATED: 0,
    m.TRADE_EXECUTED: 1,
    m.POSITION_UPDATED: 2,
    m.PORTFOLIO_UPDATE: 3,
    m.PERFORMANCE_UPDATE: 4,
    m.ALERT: 4,
    m.BOT_STATUS: 4,
}


def ticks_of(stream: list[Message]) -> list[list[Message]]:
    """Split the stream into ticks: each is thoughts, trades, positions, one portfolio_update,
    then metrics/alerts; anything out of that order fails."""
    ticks: list[list[Message]] = []
    current: list[Message] = []
    rank = -1
    for message in stream:
        r = RANK[message["type"]]
        if r < rank:
            assert rank >= 3, f"{message['type']} after {current[-1]['type']} within a tick"
            ticks.append(current)
            current, rank = [], -1
        current.append(message)
        rank = r
        if r == 3:
            assert sum(1 for x in current if x["type"] == m.PORTFOLIO_UPDATE) == 1
    ticks.append(current)
    return ticks


def assert_plain_strings(data: Any, keys: tuple[str, ...], kind: type[Any]) -> None:
    for key in keys:
        assert isinstance(data[key], str), (key, data[key])
        kind(data[key])  # parses: a Decimal or a UUID written as a string


def live_flow(account: PaperTradingAccount, token: str) -> None:
    PaperStrategyConfiguration.objects.filter(account=account).update(max_daily_trades=1)
    results: list[TickResult] = []

    async def scenario() -> tuple[Message, list[Message], uuid.UUID]:
        comm = await opened(socket(account.account_id, token=token))
        await comm.send_json_to({"action": "snapshot"})
        snapshot = await comm.receive_json_from(timeout=10)
        session_id = await asyncio.to_thread(_run_bot, account.account_id, TICKS, results)
        stream = await receive_until(
            comm, lambda x: is_session_end(x) and x["data"]["session"] == str(session_id)
        )
        await comm.disconnect()
        return snapshot, stream, session_id

    snapshot, stream, session_id = run(scenario)

    # The snapshot: what the REST API shows, before any tick.
    assert snapshot["type"] == m.SNAPSHOT
    data = snapshot["data"]
    assert data["account"] == str(account.account_id)
    assert data["portfolio"]["cash_usd"] == "10000.00000000"
    assert data["portfolio"]["account"]["account_id"] == str(account.account_id)
    assert data["bot_status"] == {
        "account": str(account.account_id),
        "running": False,
        "active": None,
        "recent": [],
    }
    assert data["thoughts"] == []
    assert data["trades"] == []

    # Every message: {"type", "data", "timestamp"}, plain JSON.
    for message in stream:
        assert set(message) == {"type", "data", "timestamp"}
        datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
    kinds = [x["type"] for x in stream]
    assert kinds[0] == m.BOT_STATUS
    assert stream[0]["data"]["event"] == m.STARTED
    assert stream[0]["data"]["running"] is True
    assert stream[0]["data"]["session"]["session_id"] == str(session_id)

    ticks = ticks_of(stream[1:])
    portfolio_updates = [x for x in stream if x["type"] == m.PORTFOLIO_UPDATE]
    assert [x["data"]["tick_number"] for x in portfolio_updates] == list(range(1, TICKS + 1))

    # The first tick trades: thought, trade, position, portfolio, in that order.
    first = [x["type"] for x in ticks[0]]
    assert first.index(m.THOUGHT_LOG_CREATED) < first.index(m.TRADE_EXECUTED)
    assert first.index(m.TRADE_EXECUTED) < first.index(m.POSITION_UPDATED)
    assert first.index(m.POSITION_UPDATED) < first.index(m.PORTFOLIO_UPDATE)

    # Same fields, same formatting as the REST API.
    trade_msg = next(x for x in stream if x["type"] == m.TRADE_EXECUTED)["data"]
    stored_trade = PaperTrade.objects.get(pk=trade_msg["trade_id"])
    assert trade_msg == _json(TradeSerializer(stored_trade).data)
    assert trade_msg["session"] == str(session_id)
    assert_plain_strings(trade_msg, ("amount_in_usd", "swap_fee_usd", "gas_cost_usd"), Decimal)
    assert_plain_strings(trade_msg, ("trade_id", "decision", "position"), uuid.UUID)
    thought_msg = next(x for x in stream if x["type"] == m.THOUGHT_LOG_CREATED)["data"]
    stored_thought = PaperAIThoughtLog.objects.get(pk=thought_msg["thought_id"])
    assert thought_msg == _json(ThoughtSerializer(stored_thought).data)
    position_msg = next(x for x in stream if x["type"] == m.POSITION_UPDATED)["data"]
    assert position_msg["position_id"] == trade_msg["position"]
    assert position_msg["token_symbol"] == "WETH"
    assert position_msg["is_open"] is True
    assert_plain_strings(position_msg, ("quantity", "current_value_usd"), Decimal)

    portfolio = portfolio_updates[0]["data"]
    assert portfolio["account"] == str(account.account_id)
    assert portfolio["session"] == str(session_id)
    assert_plain_strings(
        portfolio,
        ("cash_usd", "positions_value_usd", "total_value_usd", "fees_usd", "gas_usd"),
        Decimal,
    )
    assert Decimal(portfolio["cash_usd"]) < Decimal(10_000)
    assert Decimal(portfolio["positions_value_usd"]) > 0
    assert portfolio["market_time"] == _json(ThoughtSerializer(stored_thought).data)["created_at"]
    last = portfolio_updates[-1]["data"]
    account.refresh_from_db()
    assert Decimal(last["cash_usd"]) == account.current_balance_usd

    # Metrics at tick 20, after that tick's portfolio.
    performance = [x for x in stream if x["type"] == m.PERFORMANCE_UPDATE]
    assert len(performance) == 1
    assert performance[0] in ticks[19]
    assert performance[0]["data"]["total_trades"] >= 1
    assert_plain_strings(performance[0]["data"], ("portfolio_value_usd", "return_percent"), Decimal)

    # One trade a day allowed: the breaker trips and says why.
    breakers = [
        x for x in stream if x["type"] == m.ALERT and x["data"]["kind"] == m.BREAKER_TRIPPED
    ]
    assert breakers
    assert breakers[0]["data"]["code"] == "daily_trade_limit"
    assert "daily limit of 1" in breakers[0]["data"]["message"]
    assert breakers[0]["data"]["severity"] == m.WARNING

    # The end: bot_status then an alert.
    assert stream[-2]["type"] == m.BOT_STATUS
    assert stream[-2]["data"]["event"] == m.STOPPED
    assert stream[-2]["data"]["running"] is False
    assert stream[-2]["data"]["session"]["status"] == "STOPPED"
    assert stream[-1]["data"]["severity"] == m.WARNING

    # What went through the layer is msgpack-safe as built (channels-redis packs it so).
    assert len(results) == TICKS
    for result in results:
        for message in tick_messages(result, account_id=account.account_id, session_id=session_id):
            assert msgpack.unpackb(msgpack.packb(message)) == message


def test_owner_gets_snapshot_and_every_tick_in_order(
    account: PaperTradingAccount, token: str
) -> None:
    live_flow(account, token)


def test_same_flow_through_redis(
    redis_layer: str, account: PaperTradingAccount, token: str
) -> None:
    live_flow(account, token)


def test_batched_frames_carry_the_same_messages_one_frame_per_tick(
    account: PaperTradingAccount, token: str
) -> None:
    """`?frames=batch`: the stream a plain socket gets, grouped as one JSON array per tick."""
    ticks = 3

    async def scenario() -> tuple[list[Message], list[list[Message]], Message]:
        plain = await opened(socket(account.account_id, token=token))
        batched_path = f"/ws/paper-trading/{account.account_id}/?token={token}&frames=batch"
        batched = await opened(
            WebsocketCommunicator(application, batched_path, headers=[(b"origin", ORIGIN.encode())])
        )
        await batched.send_json_to({"action": "ping"})
        pong = await batched.receive_json_from(timeout=10)
        await asyncio.to_thread(_run_bot, account.account_id, ticks, [])
        stream = await receive_until(plain, is_session_end)
        frames: list[list[Message]] = []
        while not frames or not any(is_session_end(x) for x in frames[-1]):
            frames.append(await batched.receive_json_from(timeout=30))
        await plain.disconnect()
        await batched.disconnect()
        return stream, frames, pong

    stream, frames, pong = run(scenario)
    assert pong["type"] == m.PONG  # replies to the client's own requests stay single objects
    assert all(isinstance(frame, list) for frame in frames)
    assert [message for frame in frames for message in frame] == stream
    tick_frames = [f for f in frames if any(x["type"] == m.PORTFOLIO_UPDATE for x in f)]
    assert len(tick_frames) == ticks
    for number, frame in enumerate(tick_frames, start=1):
        assert [x["data"]["tick_number"] for x in frame if x["type"] == m.PORTFOLIO_UPDATE] == [
            number
        ]
        assert frame[0]["type"] == m.THOUGHT_LOG_CREATED


def test_session_cookie_authenticates(account: PaperTradingAccount) -> None:
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
    cookie_name = django_settings.SESSION_COOKIE_NAME
    cookie = f"{cookie_name}={client.cookies[cookie_name].value}"

    async def scenario() -> Message:
        comm = await opened(socket(account.account_id, cookie=cookie))
        await comm.send_json_to({"action": "snapshot"})
        reply: Message = await comm.receive_json_from(timeout=10)
        await comm.disconnect()
        return reply

    reply = run(scenario)
    assert reply["type"] == m.SNAPSHOT
    assert reply["data"]["portfolio"]["total_value_usd"] == "10000.00000000"


def test_strangers_are_refused(account: PaperTradingAccount, token: str) -> None:
    bob = User.objects.create_user("bob", "bob@example.com", PASSWORD)
    bob_key = create_api_token(bob, "bob")[1]
    create_account(bob, "Bob's")
    revoked_key = create_api_token(account.user, "old")[1]
    ApiToken.objects.filter(name="old").update(revoked_at=timezone.now())

    async def scenario() -> list[int]:
        return [
            await close_code(socket(account.account_id)),  # anonymous
            await close_code(socket(account.account_id, token="dxp_not-a-real-key")),
            await close_code(socket(account.account_id, token=revoked_key)),
            await close_code(socket(account.account_id, token=bob_key)),  # not bob's account
            await close_code(socket("not-a-uuid", token=token)),
            await close_code(socket(uuid.uuid4(), token=token)),
            await close_code(socket(account.account_id, token=token, origin="http://evil.test")),
        ]

    anonymous, bad_key, revoked, strangers, malformed, unknown, cross_site = run(scenario)
    assert anonymous == bad_key == revoked == 4401
    assert strangers == malformed == unknown == 4404
    assert cross_site not in (4401, 4404)  # refused by the origin check before anything else


def test_bad_client_messages_get_errors_not_crashes(
    account: PaperTradingAccount, token: str
) -> None:
    async def scenario() -> list[Message]:
        comm = await opened(socket(account.account_id, token=token))
        replies = []
        for frame in ['{"action": "dance"}', "not json", "[1, 2]", '{"action": "ping"}']:
            await comm.send_to(text_data=frame)
            replies.append(await comm.receive_json_from(timeout=10))
        await comm.disconnect()
        return replies

    unknown, not_json, not_object, pong = run(scenario)
    assert unknown["type"] == not_json["type"] == not_object["type"] == m.ERROR
    assert unknown["data"]["code"] == "unknown_action"
    assert not_json["data"]["code"] == "bad_request"
    assert pong["type"] == m.PONG


def _tick(events: tuple[Any, ...], tick_number: int = 7) -> TickResult:
    """A hand-made tick, for events a replay does not produce on demand (a feed outage)."""
    return TickResult(
        tick_number=tick_number,
        timestamp=datetime(2025, 3, 1, 12, tzinfo=UTC),
        events=events,
        portfolio=PortfolioSnapshot(
            initial_balance_usd=Decimal(10_000),
            cash_usd=Decimal("9950.5"),
            positions_value_usd=Decimal("49.25"),
            total_value_usd=Decimal("9999.75"),
            realized_pnl_usd=Decimal(0),
            unrealized_pnl_usd=Decimal(0),
            fees_usd=Decimal("0.15"),
            gas_usd=Decimal("0.10"),
        ),
        counters=EngineCounters(tick_number=tick_number),
    )


def test_feed_outage_pauses_and_session_failure_alerts(
    account: PaperTradingAccount, token: str
) -> None:
    session = PaperTradingSession.objects.create(
        account=account, price_source="live", status=PaperTradingSession.Status.PAUSED
    )
    sink = ChannelsPublisher(account.account_id, session.session_id)

    def outage_then_failure() -> None:
        sink.publish(_tick((PriceFeedChanged("CoinGecko is unreachable"),)))
        PaperTradingSession.objects.filter(pk=session.pk).update(status="RUNNING")
        sink.publish(_tick((PriceFeedChanged(""),), tick_number=8))
        session.refresh_from_db()
        session.status = PaperTradingSession.Status.FAILED
        session.status_reason = "bot crashed: boom"
        session.save()
        publish_session_status(session, m.FAILED)
        connection.close()

    async def scenario() -> list[Message]:
        comm = await opened(socket(account.account_id, token=token))
        await asyncio.to_thread(outage_then_failure)
        stream = await receive_until(comm, is_session_end)
        await comm.disconnect()
        return stream

    stream = run(scenario)
    assert [(x["type"], x["data"].get("kind") or x["data"].get("event")) for x in stream] == [
        (m.PORTFOLIO_UPDATE, None),
        (m.ALERT, m.PRICE_FEED_DOWN),
        (m.BOT_STATUS, m.PAUSED),
        (m.PORTFOLIO_UPDATE, None),
        (m.BOT_STATUS, m.RESUMED),
        (m.BOT_STATUS, m.FAILED),
        (m.ALERT, m.SESSION_ENDED),
    ]
    portfolio, down, paused, _, resumed, failed, ended = stream
    assert portfolio["data"]["cash_usd"] == "9950.50000000"
    assert portfolio["data"]["market_time"] == "2025-03-01T12:00:00Z"
    assert portfolio["data"]["tick_number"] == 7
    assert down["data"]["message"] == "CoinGecko is unreachable"
    assert down["data"]["tick_number"] == 7
    assert paused["data"]["session"]["status"] == "PAUSED"
    assert paused["data"]["running"] is True
    assert resumed["data"]["session"]["status"] == "RUNNING"
    assert failed["data"]["running"] is False
    assert ended["data"]["severity"] == m.CRITICAL
    assert "bot crashed: boom" in ended["data"]["message"]


def test_a_failing_layer_never_reaches_the_bot(
    account: PaperTradingAccount, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = PaperTradingSession.objects.create(account=account, price_source="replay")
    sink = ChannelsPublisher(account.account_id, session.session_id)
    # Nothing listens on the discard port: every send fails at once.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:9/0"]},
        }
    }
    sink.publish(_tick(()))
    assert publish_session_status(session, m.STARTED) is False

    def broken() -> None:
        raise RuntimeError("no layer")

    monkeypatch.setattr(publisher, "get_channel_layer", broken)
    sink.publish(_tick(()))
    assert publisher.send_to_group(account_group(account.account_id), [m.pong_message()]) is False
    settings.CHANNEL_LAYERS = {}
    monkeypatch.undo()
    assert publisher.send_to_group(account_group(account.account_id), [m.pong_message()]) is False


def test_account_group_name() -> None:
    account_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert account_group(account_id) == "paper_trading.12345678123456781234567812345678"
    assert account_group(str(account_id)) == account_group(account_id)
    with pytest.raises(ValueError, match="badly formed"):
        account_group("nope")
