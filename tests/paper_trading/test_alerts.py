"""Operator alerts over real HTTP to a local webhook receiver and a fake Telegram Bot API."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from paper_trading.engine.events import (
    BreakerTripped,
    EngineCounters,
    Event,
    PortfolioSnapshot,
    PriceFeedChanged,
    TickResult,
)
from paper_trading.engine.loop import BotLoop
from paper_trading.models import (
    PaperStrategyConfiguration,
    PaperTradingAccount,
    PaperTradingSession,
)
from paper_trading.realtime import messages as m
from paper_trading.services import alerts, bot_control
from paper_trading.services.alerts import AlertSink, AlertTargets
from paper_trading.services.bot import BotSettings, build_loop, run_session, start_session
from tests.fakes.alert_receivers import FakeTelegram, FakeWebhook
from tests.paper_trading.live_support import BuyWethEveryTick, TickHook

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "123456:telegram-secret-token"
CHAT = "-100777"
ACCOUNT = "11111111-1111-1111-1111-111111111111"
SESSION = "22222222-2222-2222-2222-222222222222"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def lines(self) -> list[str]:
        return [self.format(r) for r in self.records]


@pytest.fixture
def warnings() -> Iterator[_Records]:
    """The alert logger's warnings, as formatted for the log (tracebacks included)."""
    handler = _Records()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    alerts.logger.addHandler(handler)
    try:
        yield handler
    finally:
        alerts.logger.removeHandler(handler)


def _configure(settings: Any, *, webhook: str = "", telegram: str = "", timeout: float = 3) -> None:
    settings.ALERT_WEBHOOK_URL = webhook
    settings.TELEGRAM_BOT_TOKEN = TOKEN if telegram else ""
    settings.TELEGRAM_CHAT_ID = CHAT if telegram else ""
    settings.TELEGRAM_API_URL = telegram or "https://api.telegram.org"
    settings.ALERT_TIMEOUT_SECONDS = timeout


def _sink() -> AlertSink:
    sinks = alerts.alert_sinks(uuid.UUID(ACCOUNT), uuid.UUID(SESSION))
    assert len(sinks) == 1
    return sinks[0]


def _drain() -> None:
    sender = alerts.dispatcher()
    assert sender is not None
    assert sender.drain(15)


def _tick(n: int, events: tuple[Event, ...], tripped: tuple[str, ...] = ()) -> TickResult:
    """A hand-made tick, for events a replay does not produce on demand (a feed outage)."""
    return TickResult(
        tick_number=n,
        timestamp=datetime(2025, 3, 1, n, tzinfo=UTC),
        events=events,
        portfolio=PortfolioSnapshot(*(Decimal(1000),) * 4, *(Decimal(0),) * 4),
        counters=EngineCounters(tick_number=n, tripped=list(tripped)),
    )


def _dead_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nothing_configured_means_no_alert_work(
    account: PaperTradingAccount, settings: Any
) -> None:
    _configure(settings)
    assert alerts.dispatcher() is None
    session = start_session(account, BotSettings(speed=None))
    loop = build_loop(session, threading.Event(), max_ticks=1)
    assert not any(isinstance(sink, AlertSink) for sink in loop.sinks)


def test_a_tripped_breaker_alerts_once_until_it_clears(
    account: PaperTradingAccount, settings: Any
) -> None:
    """A replay bot that may trade once a day: the limit trips and stays tripped; one alert."""
    PaperStrategyConfiguration.objects.filter(account=account).update(max_daily_trades=1)
    with FakeWebhook() as hook:
        _configure(settings, webhook=hook.url)
        session = start_session(account, BotSettings(intel_level=10, speed=None))
        loop = build_loop(session, threading.Event(), max_ticks=5)
        loop.analyzer.strategy = BuyWethEveryTick()
        ticks: list[TickResult] = []
        loop.sinks = [*loop.sinks, TickHook(ticks.append)]
        loop.run()
        _drain()

    trips = [e for t in ticks for e in t.of_type(BreakerTripped)]
    assert sum(1 for t in ticks if "daily_trade_limit" in t.counters.tripped) >= 2
    assert [e.code for e in trips] == ["daily_trade_limit"]
    [alert] = [r.body for r in hook.received]
    assert hook.received[0].path == "/hooks/alerts?key=hook-secret-123"
    assert alert["kind"] == m.BREAKER_TRIPPED
    assert alert["code"] == "daily_trade_limit"
    assert alert["severity"] == m.WARNING
    assert alert["message"] == trips[0].message
    assert alert["account"] == str(account.account_id)
    assert alert["session"] == str(session.session_id)
    assert alert["at"].endswith("Z")
    tripped_at = next(t for t in ticks if t.of_type(BreakerTripped))
    assert alert["tick_number"] == tripped_at.tick_number


def test_feed_outage_and_recovery_reach_the_webhook_and_telegram(settings: Any) -> None:
    with FakeWebhook() as hook, FakeTelegram(TOKEN) as telegram:
        _configure(settings, webhook=hook.url, telegram=telegram.base_url)
        sink = _sink()
        sink.publish(_tick(1, (PriceFeedChanged("CoinGecko is unreachable"),)))
        sink.publish(_tick(2, (PriceFeedChanged("CoinGecko answered 429"),)))  # same outage
        sink.publish(_tick(3, ()))
        sink.publish(_tick(4, (PriceFeedChanged(""),)))
        sink.publish(_tick(5, (PriceFeedChanged("CoinGecko is unreachable"),)))  # a new one
        _drain()

    sent = [r.body for r in hook.received]
    assert [(a["kind"], a["severity"], a["tick_number"]) for a in sent] == [
        (m.PRICE_FEED_DOWN, m.WARNING, 1),
        (alerts.PRICE_FEED_RECOVERED, m.INFO, 4),
        (m.PRICE_FEED_DOWN, m.WARNING, 5),
    ]
    assert sent[0]["message"] == "CoinGecko is unreachable"
    assert [r.path for r in telegram.received] == [f"/bot{TOKEN}/sendMessage"] * 3
    assert [x["chat_id"] for x in telegram.messages] == [CHAT] * 3
    first = telegram.messages[0]["text"]
    assert first.startswith("[WARNING] CoinGecko is unreachable")
    assert SESSION in first


def test_a_crashed_session_alerts_as_failed(
    account: PaperTradingAccount, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: BotLoop) -> None:
        raise RuntimeError("boom")

    with FakeWebhook() as hook:
        _configure(settings, webhook=hook.url)
        stopped = start_session(account, BotSettings(speed=None))
        run_session(stopped, threading.Event(), runner="foreground", max_ticks=1)
        monkeypatch.setattr(BotLoop, "run", crash)
        failed = start_session(account, BotSettings(speed=None))
        with pytest.raises(RuntimeError, match="boom"):
            run_session(failed, threading.Event(), runner="foreground", max_ticks=1)
        _drain()

    [alert] = [r.body for r in hook.received]  # the stopped session is no alarm
    failed.refresh_from_db()
    assert failed.status == "FAILED"
    assert alert["kind"] == m.SESSION_ENDED
    assert alert["code"] == "session_failed"
    assert alert["severity"] == m.CRITICAL
    assert alert["session"] == str(failed.session_id)
    assert "bot crashed: boom" in alert["message"]


def test_a_failing_receiver_gets_the_retry(settings: Any) -> None:
    with FakeWebhook() as hook:
        _configure(settings, webhook=hook.url)
        hook.fail_next(500)
        _sink().publish(_tick(1, (BreakerTripped("daily_loss", "down 6%"),), ("daily_loss",)))
        _drain()
    assert hook.attempts == 2
    [alert] = [r.body for r in hook.received]
    assert alert["code"] == "daily_loss"


def test_a_dead_receiver_never_slows_the_bot(settings: Any, warnings: _Records) -> None:
    """One receiver refuses connections, the other never answers: the ticks do not wait."""
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen()
    try:
        port = hanging.getsockname()[1]
        dead = f"http://127.0.0.1:{_dead_port()}/hook?token=hook-secret-456"
        _configure(settings, webhook=dead, telegram=f"http://127.0.0.1:{port}", timeout=0.2)
        sink = _sink()
        started = time.monotonic()
        for n in range(1, 3):
            trip = BreakerTripped(f"breaker_{n}", "tripped")
            sink.publish(_tick(n, (trip,), tuple(f"breaker_{i}" for i in range(1, n + 1))))
        assert time.monotonic() - started < 0.5  # delivering them takes seconds
        _drain()
    finally:
        hanging.close()

    lines = warnings.lines
    assert (
        lines.count("WARNING alerts: webhook did not take a breaker_tripped alert (ConnectError)")
        == 2
    )
    assert (
        lines.count("WARNING alerts: telegram did not take a breaker_tripped alert (ReadTimeout)")
        == 2
    )
    assert len(lines) == 4
    for secret in ("hook-secret-456", "telegram-secret", "123456"):
        assert secret not in "\n".join(lines)


def test_a_full_queue_drops_with_a_warning(warnings: _Records) -> None:
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen()
    try:
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}/hook"
        sender = alerts.AlertDispatcher(
            AlertTargets(webhook_url=url, timeout_seconds=0.2), queue_size=1, backoff=()
        )
        accepted = [sender.submit({"kind": "breaker_tripped"}) for _ in range(3)]
        assert sender.drain(5)
    finally:
        hanging.close()
    assert False in accepted
    assert "WARNING alerts: queue full, dropped a breaker_tripped alert" in warnings.lines


def test_a_bot_whose_runner_died_alerts_as_failed(
    account: PaperTradingAccount, settings: Any
) -> None:
    """The reaper closes a session whose runner went silent: that failure is alerted too."""
    with FakeWebhook() as hook:
        _configure(settings, webhook=hook.url)
        session = start_session(account, BotSettings(speed=None))
        PaperTradingSession.objects.filter(pk=session.pk).update(
            worker_host="elsewhere",
            heartbeat_at=timezone.now() - timedelta(hours=1),
            runner=PaperTradingSession.Runner.FOREGROUND,
        )
        assert bot_control.reap_dead_bots() == [f"{session.session_id}: marked FAILED"]
        _drain()
    [alert] = [r.body for r in hook.received]
    assert alert["code"] == "session_failed"
    assert alert["session"] == str(session.session_id)
    assert "runner stopped" in alert["message"]
