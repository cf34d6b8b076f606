"""The dashboard's pages through Django's test client: sign-in, scoping, forms without script."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from paper_trading.models import (
    PaperAIThoughtLog,
    PaperStrategyConfiguration,
    PaperTrade,
    PaperTradingAccount,
)
from paper_trading.services.accounts import create_account
from paper_trading.web import display as d
from paper_trading.web.views import chart_series

PAGES = ["/paper-trading/", "/paper-trading/trades/", "/paper-trading/config/"]
PAGES += ["/paper-trading/analytics/", "/paper-trading/analytics/series/"]


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice", "alice@example.com", "correct-horse-battery")


@pytest.fixture
def account(alice: User) -> PaperTradingAccount:
    return create_account(alice, "Main")


@pytest.fixture
def traded(account: PaperTradingAccount) -> PaperTradingAccount:
    call_command(
        "run_paper_bot",
        "--account",
        account.name,
        "--prices",
        "replay",
        "--intel",
        "10",
        "--speed",
        "max",
        "--max-ticks",
        "120",
        verbosity=0,
    )
    assert PaperTrade.objects.filter(account=account).exists()
    return account


@pytest.fixture
def client_for(alice: User) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_sign_in(db: None, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/paper-trading/login/?next={path}")


def test_password_form_works_without_script(alice: User) -> None:
    strict = Client(enforce_csrf_checks=True)
    form = {"username": "alice", "password": "correct-horse-battery"}
    assert strict.post("/paper-trading/login/", form).status_code == 403  # no CSRF token
    client = Client()
    page = client.get("/paper-trading/login/?next=/paper-trading/trades/")
    assert page.status_code == 200
    assert b"Sign in with Ethereum" in page.content
    form = {"username": "alice", "password": "wrong"}
    assert client.post("/paper-trading/login/", form).status_code == 400
    form |= {"password": "correct-horse-battery", "next": "https://evil.example/"}
    response = client.post("/paper-trading/login/", form)
    assert response["Location"] == "/paper-trading/"  # never off-site
    form["next"] = "/paper-trading/trades/"
    client.post(
        "/paper-trading/logout/", {"csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    )
    response = client.post("/paper-trading/login/", form)
    assert response.status_code == 302, response.content[:300]
    assert response["Location"] == "/paper-trading/trades/"
    assert client.get("/paper-trading/login/")["Location"] == "/paper-trading/"


def test_every_page_renders_the_accounts_data(
    traded: PaperTradingAccount, client_for: Client
) -> None:
    for path in PAGES:
        response = client_for.get(path)
        assert response.status_code == 200, path
    dashboard = client_for.get("/paper-trading/").content.decode()
    assert 'id="dashboard-data"' in dashboard
    assert f"/ws/paper-trading/{traded.account_id}/" in dashboard
    trades = client_for.get("/paper-trading/trades/?side=SELL&page_size=25").content.decode()
    assert "Swap fee" in trades
    assert ">BUY<" not in trades
    partial = client_for.get("/paper-trading/trades/?status=REVERTED", HTTP_HX_REQUEST="true")
    assert partial.content.decode().lstrip().startswith('<section id="trade-table"')
    bad = client_for.get("/paper-trading/trades/?since=2025-02-01T00:00&until=2025-01-01T00:00")
    assert "must not be before since" in bad.content.decode()
    series = json.loads(client_for.get("/paper-trading/analytics/series/").content)
    assert series["equity"]
    assert series["tokens"]
    for token in series["tokens"].values():
        times = [p["time"] for p in token["prices"]]
        assert times == sorted(set(times))
        assert {m["time"] for m in token["markers"]} <= set(times) | {
            m["time"] for m in token["markers"] if m["status"] == "REVERTED"
        }
    decision = PaperTrade.objects.filter(account=traded).exclude(decision=None).first()
    assert decision is not None
    page = client_for.get(f"/paper-trading/thoughts/{decision.decision_id}/")
    assert page.status_code == 200
    assert "Trades it caused" in page.content.decode()


def test_someone_elses_account_is_a_404(traded: PaperTradingAccount, db: None) -> None:
    bob = User.objects.create_user("bob", "bob@example.com", "another-long-password")
    client = Client()
    client.force_login(bob)
    assert b"Create your first" in client.get("/paper-trading/").content
    for path in PAGES:
        assert client.get(f"{path}?account={traded.account_id}").status_code == 404, path
    assert client.get("/paper-trading/?account=not-a-uuid").status_code == 404
    thought = PaperTrade.objects.filter(account=traded).exclude(decision=None).first()
    assert thought is not None
    assert client.get(f"/paper-trading/thoughts/{thought.decision_id}/").status_code == 404


def test_older_thoughts_page_back_without_gaps_and_only_your_own(
    traded: PaperTradingAccount, client_for: Client
) -> None:
    rows = PaperAIThoughtLog.objects.filter(account=traded).order_by("-created_at")
    everything = {str(t) for t in rows.values_list("thought_id", flat=True)}
    assert len(everything) > 10
    newest = rows.first()
    assert newest is not None
    url = "/paper-trading/thoughts/older/"
    seen: list[str] = []
    before: str = newest.created_at.isoformat()
    for _ in range(len(everything)):
        body = client_for.get(
            url, {"account": str(traded.account_id), "before": before, "limit": "5"}
        )
        assert body.status_code == 200
        page = json.loads(body.content)
        assert page["thoughts"], page
        times = [t["created_at"] for t in page["thoughts"]]
        assert times == sorted(times, reverse=True)
        assert "market_data" not in page["thoughts"][0]
        seen += [t["thought_id"] for t in page["thoughts"] if t["thought_id"] not in seen]
        if not page["has_more"]:
            break
        before = page["thoughts"][-1]["created_at"]
    assert set(seen) == everything
    assert (
        client_for.get(url, {"account": str(traded.account_id), "before": "soon"}).status_code
        == 400
    )
    assert Client().get(url).status_code == 302
    bob = User.objects.create_user("bob", "bob@example.com", "another-long-password")
    other = Client()
    other.force_login(bob)
    query = {"account": str(traded.account_id), "before": before}
    assert other.get(url, query).status_code == 404


def test_configuration_form_without_script(
    account: PaperTradingAccount, client_for: Client
) -> None:
    url = f"/paper-trading/config/?account={account.account_id}"
    page = client_for.get(url).content.decode()
    assert 'id="cfg-stop_loss_percent"' in page
    bad = client_for.post(url, {"stop_loss_percent": "150", "allowed_tokens": ["WETH"]})
    assert bad.status_code == 400
    assert "less than or equal to 100" in bad.content.decode()
    good = client_for.post(url, {"stop_loss_percent": "7", "allowed_tokens": ["WETH", "UNI"]})
    assert good.status_code == 302
    config = PaperStrategyConfiguration.objects.get(account=account)
    assert config.stop_loss_percent == Decimal(7)
    assert config.allowed_tokens == ["WETH", "UNI"]
    assert config.trailing_stop_enabled is False


def test_new_account_form(alice: User, client_for: Client) -> None:
    response = client_for.post(
        "/paper-trading/accounts/new/", {"name": "Second", "initial_balance_usd": "5000"}
    )
    assert response.status_code == 302
    account = PaperTradingAccount.objects.get(user=alice, name="Second")
    assert account.initial_balance_usd == Decimal(5000)
    again = client_for.post("/paper-trading/accounts/new/", {"name": "Second"})
    assert "already have an account" in again.content.decode()
    tiny = client_for.post(
        "/paper-trading/accounts/new/", {"name": "Tiny", "initial_balance_usd": "1"}
    )
    assert "greater than or equal to 100" in tiny.content.decode()


def test_chart_series_of_an_account_without_trades(account: PaperTradingAccount) -> None:
    assert chart_series(account) == {
        "account": str(account.account_id),
        "equity": [],
        "drawdown": [],
        "tokens": {},
    }


@pytest.mark.parametrize(
    ("value", "usd", "signed", "price", "cost"),
    [
        ("1234.5", "$1,234.50", "+$1,234.50", "$1,234.50", "$1,234.50"),
        ("-2.5", "-$2.50", "-$2.50", "-$2.5000", "-$2.50"),
        ("0.0036", "$0.00", "$0.00", "$0.0036", "$0.0036"),
        ("0", "$0.00", "$0.00", "$0", "$0.00"),
        (None, "—", "—", "—", "—"),
        ("nan", "—", "—", "—", "—"),
    ],
)
def test_display_formats(value: str | None, usd: str, signed: str, price: str, cost: str) -> None:
    assert d.usd(value) == usd
    assert d.signed_usd(value) == signed
    assert d.price(value) == price
    assert d.cost(value) == cost


def test_display_other_formats() -> None:
    assert d.percent("12.345") == "12.3%"
    assert d.ratio("1.5") == "1.50"
    assert d.quantity("0.000197740000") == "0.00019774"
    assert d.tone("-1") == "neg"
    assert d.tone("0") == ""
    assert d.when("2025-12-07T22:00:00Z") == "2025-12-07 22:00:00"
    assert d.when("") == "—"
    assert d.when("yesterday") == "yesterday"
