"""/healthz, /readyz, /metrics and JSON logs, through the real app."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator  # type: ignore[import-untyped, unused-ignore]
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import OperationalError, connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from dexproject.asgi import application
from paper_trading.engine.events import TickResult
from paper_trading.models import PaperTradingAccount
from paper_trading.observability import health
from paper_trading.observability.log_context import bot_session
from paper_trading.services.accounts import create_account
from paper_trading.services.auth import create_api_token
from paper_trading.services.bot import BotSettings, build_loop, run_session, start_session
from tests.fakes.coingecko import FakeCoinGecko, fake_coingecko  # noqa: F401
from tests.paper_trading.live_support import live_loop, point_at, price_all

ROOT = Path(__file__).resolve().parents[2]
IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Client, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_healthz_answers_without_touching_the_database() -> None:
    # No django_db mark: any query would fail the test.
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_every_check(settings: Any) -> None:
    settings.REDIS_URL = ""
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok"},
    }


@pytest.mark.django_db
def test_readyz_checks_the_channel_layer_when_redis_carries_it(settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    settings.CHANNEL_LAYERS = IN_MEMORY
    assert Client().get("/readyz").json()["checks"]["channel_layer"] == "ok"

    # Nothing listens on the discard port: the round trip fails and readiness says so.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL]},
        }
    }
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["channel_layer"].startswith("failed: ")


@pytest.mark.django_db
def test_readyz_round_trips_through_a_real_redis_channel_layer(settings: Any) -> None:
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set (CI starts a Redis server and sets it)")
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}
    }
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["channel_layer"] == "ok"


@pytest.mark.django_db
def test_readyz_answers_503_naming_the_failed_check(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.REDIS_URL = ""

    def unreachable() -> None:
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(health, "check_database", unreachable)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": "failed: OperationalError: could not connect to server",
            "migrations": "ok",
        },
    }


def test_metrics_token_is_required_when_configured(settings: Any) -> None:
    settings.METRICS_TOKEN = "s3cret"
    client = Client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert value(scrape(client, Authorization="Bearer s3cret"), "dexpaper_websocket_clients") >= 0


@pytest.mark.django_db
def test_metrics_count_a_replay_bots_ticks_and_trades(account: PaperTradingAccount) -> None:
    client = Client()
    before = scrape(client)
    session = start_session(account, BotSettings(intel_level=10, chain_id=42161))
    build_loop(session, threading.Event(), max_ticks=60).run()
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("dexpaper_bot_ticks_total") == 60
    assert grew("dexpaper_bot_tick_duration_seconds_count") == 60  # timed by the loop itself
    assert grew("dexpaper_bot_tick_duration_seconds_sum") > 0
    trades = {
        status: grew("dexpaper_trades_total", status=status)
        for status in ("EXECUTED", "REVERTED", "DROPPED")
    }
    session.refresh_from_db()
    assert sum(trades.values()) == account.trades.count() > 0
    assert trades["EXECUTED"] == account.trades.filter(status="EXECUTED").count()
    # Replay bars are an hour apart and each tick sees its own bar's prices.
    assert value(after, "dexpaper_price_age_seconds", source="replay") < 3600


@pytest.mark.django_db
def test_metrics_count_live_feed_calls_errors_and_outages(
    fake_coingecko: FakeCoinGecko,  # noqa: F811
    account: PaperTradingAccount,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    price_all(fake_coingecko)
    point_at(fake_coingecko, monkeypatch, settings)
    plan = ["healthy", "healthy", "error", "healthy"]

    def switch(result: TickResult) -> None:
        if result.tick_number < len(plan) and plan[result.tick_number] == "error":
            fake_coingecko.server_error(503)
        else:
            fake_coingecko.healthy()

    client = Client()
    before = scrape(client)
    _, loop = live_loop(account, len(plan), switch)
    loop.run()
    after = scrape(client)

    def grew(name: str) -> float:
        return value(after, name, source="coingecko") - value(before, name, source="coingecko")

    # The TTL is 0 in these tests: every tick asks upstream, and one of them fails.
    assert grew("dexpaper_price_feed_upstream_calls_total") == len(plan)
    assert grew("dexpaper_price_feed_errors_total") == 1
    assert value(after, "dexpaper_price_feed_outages_total") == (
        value(before, "dexpaper_price_feed_outages_total") + 1
    )
    assert 0 <= value(after, "dexpaper_price_age_seconds", source="coingecko") < 60


@pytest.mark.django_db
def test_api_latency_is_recorded_by_view_and_status_class(user: User) -> None:
    client = Client()
    label = {"view": "api-accounts", "status": "2xx"}
    before = value(scrape(client), "dexpaper_http_request_duration_seconds_count", **label)
    client.force_login(user)
    assert client.get("/paper-trading/api/accounts/").status_code == 200
    after = value(scrape(client), "dexpaper_http_request_duration_seconds_count", **label)
    assert after == before + 1


@pytest.mark.django_db(transaction=True)
def test_websocket_clients_gauge_follows_connections(
    account: PaperTradingAccount, settings: Any
) -> None:
    settings.CHANNEL_LAYERS = IN_MEMORY
    token = create_api_token(account.user, "websocket")[1]
    path = f"/ws/paper-trading/{account.account_id}/?token={token}"

    @sync_to_async
    def clients() -> float:
        return value(scrape(Client()), "dexpaper_websocket_clients")

    async def scenario() -> tuple[float, float, float]:
        idle = await clients()
        comm = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost")])
        connected, _ = await comm.connect(timeout=10)
        assert connected
        open_ = await clients()
        await comm.disconnect()
        return idle, open_, await clients()

    idle, open_, closed = async_to_sync(scenario)()
    assert open_ == idle + 1
    assert closed == idle


def test_log_format_json_writes_one_json_object_per_line() -> None:
    script = (
        "import logging, django; django.setup(); "
        "logging.getLogger('paper_trading.bot').warning("
        "'breaker tripped: %s', 'daily_loss', extra={'session_id': 'abc', 'account_id': 'def'}); "
        "logging.getLogger('django.request').error('Internal Server Error: /x')"
    )
    env = {**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "dexproject.settings"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    bot, django_line = lines
    assert bot["message"] == "breaker tripped: daily_loss"
    assert bot["level"] == "WARNING"
    assert bot["logger"] == "paper_trading.bot"
    assert bot["session_id"] == "abc"
    assert bot["account_id"] == "def"
    assert bot["timestamp"].endswith("+00:00")
    assert django_line["logger"] == "django.request"
    assert django_line["level"] == "ERROR"


@contextmanager
def console_output(formatter_name: str) -> Iterator[io.StringIO]:
    """What the configured console handler (its filters included) writes, in one of the
    configured formats, while the block runs; at INFO, whatever level a command left set."""
    logger = logging.getLogger("paper_trading")
    handler = next(h for h in logger.handlers if h.name == "console")
    assert isinstance(handler, logging.StreamHandler)
    config = dict(django_settings.LOGGING["formatters"][formatter_name])  # configuring pops keys
    formatter = logging.config.DictConfigurator({}).configure_formatter(config)
    previous, level = handler.formatter, logger.level
    out = io.StringIO()
    old_stream = handler.setStream(out)
    handler.setFormatter(formatter)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.setLevel(level)
        handler.setFormatter(previous)
        handler.setStream(old_stream)


@pytest.mark.django_db(transaction=True)
def test_json_log_records_carry_their_bots_session_and_account(
    user: User, account: PaperTradingAccount
) -> None:
    """Two bots at once, each on a thread as the web server runs them, then lines outside."""
    accounts = {"first": account, "second": create_account(user, "Second")}
    sessions = {
        name: start_session(acc, BotSettings(intel_level=10, chain_id=42161))
        for name, acc in accounts.items()
    }

    def run(name: str) -> None:
        try:
            log = logging.getLogger(f"paper_trading.bot.{name}")
            run_session(sessions[name], threading.Event(), runner="embedded", max_ticks=40, log=log)
        finally:
            connection.close()

    outside = logging.getLogger("paper_trading.test")
    with console_output("json") as out:
        threads = [threading.Thread(target=run, args=(name,)) for name in sessions]
        for thread in threads:
            thread.start()
        outside.warning("while the bots run")
        for thread in threads:
            thread.join()
        outside.warning("after the bots ran")

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    for name, session in sessions.items():
        mine = [line for line in lines if line["logger"] == f"paper_trading.bot.{name}"]
        assert mine, f"no log line from the {name} bot"
        assert {(line["session_id"], line["account_id"]) for line in mine} == {
            (str(session.session_id), str(accounts[name].account_id))
        }
    plain = [line for line in lines if line["logger"] == "paper_trading.test"]
    assert [line["message"] for line in plain] == ["while the bots run", "after the bots ran"]
    assert not any("session_id" in line or "account_id" in line for line in plain)


def test_plain_log_lines_name_the_bots_session_briefly() -> None:
    log = logging.getLogger("paper_trading.test")
    session_id, account_id = uuid.uuid4(), uuid.uuid4()
    with console_output("plain") as out:
        with bot_session(session_id, account_id):
            log.warning("inside")
        log.warning("outside")
    inside, outside = out.getvalue().splitlines()
    assert inside.endswith(f"WARNING inside [session {str(session_id)[:8]}]")
    assert outside.endswith("WARNING outside")
