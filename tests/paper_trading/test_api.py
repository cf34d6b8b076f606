"""Every trading endpoint through the HTTP client: success, bad input, and other users' data."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from paper_trading.models import (
    PaperStrategyConfiguration,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
)
from paper_trading.services.accounts import create_account
from paper_trading.services.bot_control import wait_for
from tests.fakes.coingecko import FakeCoinGecko, fake_coingecko  # noqa: F401
from tests.paper_trading.live_support import PRICES, point_at, price_all

API = "/paper-trading/api/"
pytestmark = pytest.mark.django_db

#: Every read endpoint that takes ?account=.
ACCOUNT_READS = [
    "ai-thoughts/",
    "portfolio/",
    "trades/",
    "trades/recent/",
    "positions/open/",
    "metrics/",
    "performance/",
    "configuration/",
    "bot/status/",
    "analytics/data/",
    "analytics/export/",
]


def _run_alice_bot(*args: str) -> None:
    """Run the replay bot on Alice's account in this process, to its end."""
    call_command(
        "run_paper_bot",
        "--account",
        "Main",
        "--user",
        "alice-api",
        "--prices",
        "replay",
        *args,
        verbosity=0,
    )


@pytest.fixture(scope="module")
def traded_db(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Alice's account after 300 replay ticks, shared by this module's read tests."""
    with django_db_blocker.unblock():
        alice = User.objects.create_user("alice-api", password="pw")
        account = create_account(alice, "Main")
        _run_alice_bot("--max-ticks", "300", "--intel", "9")
        assert account.trades.exists()
    yield
    with django_db_blocker.unblock():
        User.objects.filter(username="alice-api").delete()


@pytest.fixture
def alice(traded_db: None) -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.get(username="alice-api"))
    return client


@pytest.fixture
def alice_account(traded_db: None) -> PaperTradingAccount:
    return PaperTradingAccount.objects.get(user__username="alice-api")


@pytest.fixture
def bob() -> APIClient:
    user = User.objects.create_user("bob-api", password="pw")
    create_account(user, "Bob's")
    client = APIClient()
    client.force_authenticate(user)
    return client


def _error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"code", "message", "fields"}
    assert body["message"]
    if code:
        assert body["code"] == code
    return body


@pytest.mark.parametrize("path", [*ACCOUNT_READS, "accounts/", "prices/WETH/", "bot/start/"])
def test_every_endpoint_needs_a_signed_in_user(path: str) -> None:
    method = APIClient().post if path == "bot/start/" else APIClient().get
    _error(method(API + path), 401, "not_authenticated")


def test_unknown_api_paths_answer_json_404(alice: APIClient) -> None:
    _error(alice.get(API + "no/such/thing/"), 404, "not_found")


def test_accounts_list_create_detail(alice: APIClient) -> None:
    listed = alice.get(API + "accounts/").json()
    assert [a["name"] for a in listed] == ["Main"]
    created = alice.post(
        API + "accounts/", {"name": "Second", "initial_balance_usd": "2500.5"}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["current_balance_usd"] == "2500.50000000"
    detail = alice.get(API + f"accounts/{created.json()['account_id']}/")
    assert detail.json()["name"] == "Second"
    assert len(alice.get(API + "accounts/").json()) == 2
    body = _error(alice.post(API + "accounts/", {"name": "Second"}, format="json"), 409)
    assert "already have an account named 'Second'" in body["message"]
    bad = _error(
        alice.post(API + "accounts/", {"name": "", "initial_balance_usd": "5"}, format="json"),
        400,
        "validation_error",
    )
    assert set(bad["fields"]) == {"name", "initial_balance_usd"}
    _error(alice.post(API + "accounts/", "not json", content_type="application/json"), 400)


def test_reset_account(alice: APIClient, alice_account: PaperTradingAccount) -> None:
    second = alice.post(API + "accounts/", {"name": "Scratch"}, format="json").json()
    reset = alice.post(API + f"accounts/{second['account_id']}/reset/")
    assert reset.status_code == 200
    assert reset.json()["current_balance_usd"] == "10000.00000000"
    PaperTradingSession.objects.create(account=alice_account, price_source="replay")
    body = _error(alice.post(API + f"accounts/{alice_account.account_id}/reset/"), 409)
    assert "stop the running bot" in body["message"]


def test_thoughts_filters(alice: APIClient) -> None:
    rows = alice.get(API + "ai-thoughts/?limit=5").json()
    assert len(rows) == 5
    assert rows == sorted(rows, key=lambda r: r["created_at"], reverse=True)
    buys = alice.get(API + "ai-thoughts/?decision_type=BUY&limit=500").json()
    assert buys
    assert {r["decision_type"] for r in buys} == {"BUY"}
    weth = alice.get(API + "ai-thoughts/?token=weth&limit=20").json()
    assert {r["token_symbol"] for r in weth} == {"WETH"}
    since = rows[2]["created_at"]
    later = alice.get(API + f"ai-thoughts/?since={since}&limit=500").json()
    assert all(r["created_at"] >= since for r in later)
    body = _error(alice.get(API + "ai-thoughts/?limit=0&decision_type=MAYBE"), 400)
    assert set(body["fields"]) == {"limit", "decision_type"}


def test_trades_filters_and_cursor_pages(
    alice: APIClient, alice_account: PaperTradingAccount
) -> None:
    total = alice_account.trades.count()
    seen: list[str] = []
    url: str | None = API + "trades/?page_size=7"
    while url:
        page = alice.get(url).json()
        seen += [t["trade_id"] for t in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == total
    sells = alice.get(API + "trades/?side=SELL&page_size=500").json()["results"]
    assert sells
    assert {t["side"] for t in sells} == {"SELL"}
    one = sells[0]
    for column in ("swap_fee_usd", "price_impact_bps", "gas_cost_usd", "status", "decision"):
        assert one[column] is not None
    window = alice.get(API + f"trades/?since={one['created_at']}&until={one['created_at']}").json()[
        "results"
    ]
    assert one["trade_id"] in [t["trade_id"] for t in window]
    assert alice.get(API + "trades/?token=NOPE").json()["results"] == []
    body = _error(alice.get(API + "trades/?since=2026-02-01T00:00Z&until=2026-01-01T00:00Z"), 400)
    assert body["fields"] == {"until": ["must not be before since"]}
    _error(alice.get(API + "trades/?cursor=garbage"), 400)
    recent = alice.get(API + "trades/recent/?limit=3").json()
    assert [t["trade_id"] for t in recent] == seen[:3]


def test_portfolio_positions_metrics_performance(
    alice: APIClient, alice_account: PaperTradingAccount
) -> None:
    book = alice.get(API + "portfolio/").json()
    positions = alice.get(API + "positions/open/").json()
    assert [p["position_id"] for p in book["positions"]] == [p["position_id"] for p in positions]
    value = sum((Decimal(p["current_value_usd"]) for p in positions), Decimal(0))
    assert Decimal(book["positions_value_usd"]) == value
    assert Decimal(book["total_value_usd"]) == Decimal(book["cash_usd"]) + value
    assert Decimal(book["total_pnl_usd"]) == Decimal(book["total_value_usd"]) - Decimal(10_000)
    metrics = alice.get(API + "metrics/").json()
    assert metrics["total_trades"] == alice_account.trades.count()
    assert metrics["portfolio_value_usd"] == book["total_value_usd"]
    assert metrics["last_24h"]["trades"] >= 0
    assert metrics["win_rate_percent"] is not None
    performance = alice.get(API + "performance/").json()
    assert performance["max_drawdown_percent"] is not None
    assert performance["total_fees_usd"] == book["fees_usd"]
    assert performance["reverted_trades"] == alice_account.trades.filter(status="REVERTED").count()


def test_analytics_and_export(alice: APIClient, alice_account: PaperTradingAccount) -> None:
    data = alice.get(API + "analytics/data/").json()
    assert len(data["equity"]) == alice_account.metrics.count()
    assert all(Decimal(p["drawdown_percent"]) >= 0 for p in data["equity"])
    per_token = {r["token"]: r for r in data["per_token"]}
    assert sum(r["trades"] for r in per_token.values()) == alice_account.trades.count()
    net = sum((Decimal(r["net_pnl_usd"]) for r in per_token.values()), Decimal(0))
    account = alice_account
    assert net == account.realized_pnl_usd - account.total_fees_usd - account.total_gas_usd
    response = alice.get(API + "analytics/export/", HTTP_ACCEPT="text/csv")
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(_streamed(response))))
    header, body = rows[0], rows[1:]
    for column in ("swap_fee_usd", "price_impact_bps", "gas_cost_usd", "l1_fee_native", "status"):
        assert column in header
    assert len(body) == alice_account.trades.count()


def test_analytics_costs_per_gas_strategy(
    alice: APIClient, alice_account: PaperTradingAccount, bob: APIClient
) -> None:
    """The gas-per-strategy table the analytics page shows, one row per strategy traded."""
    # Two more runs on top of the module's (simulator gas on Base), on Base too (its open
    # positions keep the account there): slow gas with a tight tolerance reverts, fast gas with
    # a loose one gets sandwiched.
    for chain, config in (
        ("base", {"gas_strategy": "slow", "slippage_tolerance_percent": "0.01"}),
        (
            "base",
            {"gas_strategy": "fast", "slippage_tolerance_percent": "2", "allowed_tokens": ["UNI"]},
        ),
    ):
        switched = alice.post(API + "configuration/", config, format="json")
        assert switched.status_code == 200, switched.content
        _run_alice_bot("--chain", chain, "--max-ticks", "200", "--intel", "10", "--new-session")
    rows = alice.get(API + "analytics/data/").json()["per_gas_strategy"]
    assert [r["strategy"] for r in rows] == ["fast", "simulator", "slow"]
    for row in rows:
        trades = list(alice_account.trades.filter(gas_strategy=row["strategy"]))
        n = len(trades)
        reverted = sum(t.status == PaperTrade.Status.REVERTED for t in trades)
        dropped = sum(t.status == PaperTrade.Status.DROPPED for t in trades)
        delay = sum(t.inclusion_delay_blocks for t in trades)
        assert (row["trades"], row["reverted"], row["dropped"]) == (n, reverted, dropped)
        assert row["sandwiched"] == sum(t.sandwiched for t in trades)
        # Money and ratios are decimal strings, exact to the cent and the basis point.
        assert Decimal(row["gas_usd"]) == sum((t.gas_cost_usd for t in trades), Decimal(0))
        assert Decimal(row["mev_cost_usd"]) == sum((t.mev_cost_usd for t in trades), Decimal(0))
        assert isinstance(row["gas_usd"], str)
        assert isinstance(row["mev_cost_usd"], str)
        assert Decimal(row["mean_inclusion_delay_blocks"]) == round(Decimal(delay) / n, 4)
        assert Decimal(row["revert_rate_percent"]) == round(Decimal(reverted * 100) / n, 4)
        assert Decimal(row["drop_rate_percent"]) == round(Decimal(dropped * 100) / n, 4)
    assert sum(r["trades"] for r in rows) == alice_account.trades.count()
    by_name = {r["strategy"]: r for r in rows}
    assert by_name["slow"]["reverted"] > 0
    assert by_name["fast"]["sandwiched"] > 0
    assert Decimal(by_name["fast"]["mev_cost_usd"]) > 0
    # The web page's table counts the same trades.
    page = Client()
    page.force_login(alice_account.user)
    web = page.get("/paper-trading/analytics/series/?figures=1").json()["per_gas_strategy"]
    assert [(w["strategy"], w["trades"], w["sandwiched"]) for w in web] == [
        (r["strategy"], r["trades"], r["sandwiched"]) for r in rows
    ]
    # Bob is refused Alice's table like every other read, and his own is empty.
    theirs = str(alice_account.account_id)
    _error(bob.get(API + f"analytics/data/?account={theirs}"), 404, "not_found")
    assert bob.get(API + "analytics/data/").json()["per_gas_strategy"] == []


def test_prices_are_real_or_refused(
    alice: APIClient,
    fake_coingecko: FakeCoinGecko,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    price_all(fake_coingecko)
    point_at(fake_coingecko, monkeypatch, settings)
    fake_coingecko.down()
    body = _error(alice.get(API + "prices/WETH/"), 503, "service_unavailable")
    assert "cannot reach CoinGecko" in body["message"]
    fake_coingecko.up()
    price = alice.get(API + "prices/weth/?chain=arbitrum").json()
    assert Decimal(price["price_usd"]) == PRICES["weth"]
    assert price["price_source"] == "coingecko"
    assert price["chain_id"] == 42161
    assert 0 <= price["age_seconds"] < 60
    # A source clock a few seconds ahead (within the feed's tolerance) is a fresh price, age 0.
    ahead = datetime.now(UTC) + timedelta(seconds=3)
    fake_coingecko.set_price("weth", PRICES["weth"], updated_at=ahead)
    assert alice.get(API + "prices/WETH/").json()["age_seconds"] == 0
    _error(alice.get(API + "prices/OP/"), 404)  # OP is not traded on Base
    assert "unknown chain" in _error(alice.get(API + "prices/WETH/?chain=mars"), 400)["message"]
    fake_coingecko.stale()
    stale = _error(alice.get(API + "prices/UNI/"), 503)
    assert "stale" in stale["message"]


def test_configuration_read_validate_update(alice: APIClient) -> None:
    config = alice.get(API + "configuration/").json()
    assert config["stop_loss_percent"] == "5.00"
    updated = alice.post(
        API + "configuration/",
        {"stop_loss_percent": "7.5", "allowed_tokens": ["WETH", "UNI"]},
        format="json",
    )
    assert updated.status_code == 200
    assert updated.json()["stop_loss_percent"] == "7.50"
    row = PaperStrategyConfiguration.objects.get(account__user__username="alice-api")
    assert row.allowed_tokens == ["WETH", "UNI"]
    body = _error(
        alice.post(
            API + "configuration/",
            {
                "stop_loss_percent": "500",
                "max_daily_trades": 0,
                "allowed_tokens": ["DOGE"],
                "slippage_tolerance_percent": "abc",
            },
            format="json",
        ),
        400,
        "validation_error",
    )
    assert set(body["fields"]) == {
        "stop_loss_percent",
        "max_daily_trades",
        "allowed_tokens",
        "slippage_tolerance_percent",
    }
    assert "stop_loss_percent" in body["message"]


def test_configuration_takes_huge_amounts_the_column_holds(account: PaperTradingAccount) -> None:
    """A USD amount with 21 whole digits fits its column (30 digits, 8 places): stored, not a 500;
    one past the column is a 400 naming the field."""
    client = APIClient()
    client.force_authenticate(account.user)
    huge = {"min_balance_usd": "1e20", "min_trade_usd": "123456789012345678901.5"}
    updated = client.post(API + "configuration/", huge, format="json")
    assert updated.status_code == 200, updated.content
    stored = client.get(API + "configuration/").json()
    assert Decimal(stored["min_balance_usd"]) == Decimal("1e20")
    assert Decimal(stored["min_trade_usd"]) == Decimal("123456789012345678901.5")
    too_big = client.post(API + "configuration/", {"min_balance_usd": "1e22"}, format="json")
    assert set(_error(too_big, 400, "validation_error")["fields"]) == {"min_balance_usd"}


@pytest.mark.django_db(transaction=True)
def test_bot_start_status_stop(account: PaperTradingAccount) -> None:
    client = APIClient()
    client.force_authenticate(account.user)
    started = client.post(
        API + "bot/start/",
        {
            "prices": "replay",
            "speed": "36000",
            "intel_level": 7,
            "chain": "arbitrum",
            "strategy_config": {"stop_loss_percent": "3"},
        },
        format="json",
    )
    assert started.status_code == 201, started.content
    session = started.json()
    assert session["price_source"] == "replay"
    assert session["chain_id"] == 42161
    assert PaperStrategyConfiguration.objects.get(account=account).stop_loss_percent == 3
    try:
        status = client.get(API + "bot/status/").json()
        assert status["running"] is True
        assert status["active"]["session_id"] == session["session_id"]
        again = client.post(API + "bot/start/", {"prices": "replay"}, format="json")
        assert "already running" in _error(again, 409, "conflict")["message"]
    finally:
        stopped = client.post(API + "bot/stop/", {"reason": "test over"}, format="json")
    assert stopped.status_code == 200
    assert stopped.json()["stop_requested"] is True
    assert wait_for(stopped.json()["session_id"], timeout=30)
    final = PaperTradingSession.objects.get(pk=session["session_id"])
    assert final.status == "STOPPED"
    assert final.status_reason == "stopped on request: test over"
    assert client.get(API + "bot/status/").json()["running"] is False
    none = _error(client.post(API + "bot/stop/", {}, format="json"), 409)
    assert "no bot is running" in none["message"]


def test_bot_start_validates_every_field(alice: APIClient) -> None:
    body = _error(
        alice.post(
            API + "bot/start/",
            {
                "intel_level": 11,
                "chain": "mars",
                "prices": "fake",
                "speed": "-1",
                "runtime_minutes": 0,
                "strategy_config": {"take_profit_percent": "-1"},
            },
            format="json",
        ),
        400,
    )
    assert set(body["fields"]) == {
        "intel_level",
        "chain",
        "prices",
        "speed",
        "runtime_minutes",
        "strategy_config",
    }


def test_isolation_sweep(
    bob: APIClient, alice: APIClient, alice_account: PaperTradingAccount
) -> None:
    """Bob sees none of Alice's data: every endpoint answers 404 for her account."""
    theirs = str(alice_account.account_id)
    for path in ACCOUNT_READS:
        _error(bob.get(API + f"{path}?account={theirs}"), 404, "not_found")
    _error(bob.get(API + f"accounts/{theirs}/"), 404)
    _error(bob.post(API + f"accounts/{theirs}/reset/"), 404)
    _error(
        bob.post(
            API + f"configuration/?account={theirs}", {"stop_loss_percent": "1"}, format="json"
        ),
        404,
    )
    _error(bob.post(API + "bot/start/", {"account": theirs}, format="json"), 404)
    _error(bob.post(API + "bot/stop/", {"account": theirs}, format="json"), 404)
    # His own views never include her rows.
    assert [a["name"] for a in bob.get(API + "accounts/").json()] == ["Bob's"]
    assert bob.get(API + "trades/").json()["results"] == []
    assert bob.get(API + "ai-thoughts/").json() == []
    export = bob.get(API + "analytics/export/")
    assert len(_streamed(export).strip().splitlines()) == 1
    alice_trade = PaperTrade.objects.filter(account=alice_account).first()
    assert alice_trade is not None
    assert str(alice_trade.trade_id) not in bob.get(API + "trades/").content.decode()
    # Her configuration is untouched and her account still reconciles.
    config = alice.get(API + "configuration/").json()
    assert config["stop_loss_percent"] != "1.00"


def _streamed(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


def test_a_user_without_accounts_is_told_to_create_one() -> None:
    client = APIClient()
    client.force_authenticate(User.objects.create_user("carol", password="pw"))
    body = _error(client.get(API + "portfolio/"), 404)
    assert "create one with POST accounts/" in body["message"]
    _error(client.get(API + "portfolio/?account=not-a-uuid"), 400)
