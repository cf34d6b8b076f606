"""The dashboard in a real browser (Debian's headless Chromium) against the real server.

One server (`run_local --no-bot` on a temporary SQLite database) serves the whole module; the
tests run in file order and build on each other (the demo user's bot makes the trades the later
pages show). Screenshots land in tests/browser/artifacts/.

The Django ORM is not used here: Playwright's sync API keeps an event loop in this thread, and
the server is another process anyway. Facts are read over HTTP or from the SQLite file.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import CHROMIUM, LocalServer, launch_chromium

if not Path(CHROMIUM).exists():  # CI installs it (.ci/services.sh); a skip fails CI
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

from eth_account import Account
from eth_account.messages import encode_defunct
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

pytestmark = pytest.mark.own_database

ARTIFACTS = Path(__file__).parent / "artifacts"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
#: A throwaway key: the wallet the SIWE test signs with.
WALLET = Account.from_key("0x" + "4f" * 32)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    folder = tmp_path_factory.mktemp("browser")
    local = LocalServer(folder)
    local.migrate()
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _new_page(browser: Browser, errors: list[str]) -> Page:
    """A page in a fresh context (its own cookies); uncaught script errors go to `errors`."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def _sign_in(page: Page, server: LocalServer) -> None:
    page.goto(f"{server.base}/paper-trading/")
    expect(page).to_have_url(f"{server.base}/paper-trading/login/?next=/paper-trading/")
    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{server.base}/paper-trading/")


def _demo_account_id(server: LocalServer) -> str:
    with sqlite3.connect(server.db, timeout=30) as conn:
        row = conn.execute(
            "SELECT account_id FROM paper_trading_papertradingaccount WHERE name = 'Demo'"
        ).fetchone()
    return str(uuid.UUID(str(row[0])))


@pytest.fixture(scope="module")
def demo(server: LocalServer, browser: Browser) -> Iterator[Page]:
    """The demo user's signed-in page, shared by the tests that follow it."""
    errors: list[str] = []
    page = _new_page(browser, errors)
    page.goto(f"{server.base}/paper-trading/login/")
    _shot(page, "01-login")
    _sign_in(page, server)
    yield page
    page.context.close()
    assert errors == []


def test_sign_in_with_password_shows_a_live_dashboard(demo: Page) -> None:
    expect(demo.locator("#conn")).to_have_attribute("data-state", "live")
    expect(demo.get_by_role("heading", name="Demo")).to_be_visible()
    expect(demo.locator("#fig-total")).to_have_text("$10,000.00")
    expect(demo.locator("#bot-state")).to_have_text("Stopped")
    for label in ("Intel level", "Chain", "Prices", "Replay speed", "Account"):
        expect(demo.get_by_label(label)).to_be_visible()


def test_start_a_bot_and_watch_trades_and_thoughts_arrive_live(demo: Page) -> None:
    demo.evaluate("window.__sameDocument = true")
    demo.get_by_label("Intel level").fill("10")
    demo.get_by_label("Prices").select_option("replay")
    demo.get_by_label("Replay speed").select_option("36000")
    demo.get_by_role("button", name="Start bot").click()

    expect(demo.locator("#bot-state")).to_have_text("Running")
    expect(demo.locator("#bot-source")).to_have_text("REPLAY")
    expect(demo.locator("#thoughts li[data-id]").first).to_be_visible()
    expect(demo.locator("#trades-body tr[data-id]").first).to_be_visible(timeout=60_000)
    expect(demo.locator("#positions-body tr[data-id]").first).to_be_visible(timeout=60_000)
    expect(demo.locator("#fig-total")).not_to_have_text("$10,000.00")
    expect(demo.locator("#bot-last-tick")).not_to_have_text("—")
    # Wait for a few more trades so the later pages have something to show.
    deadline = time.monotonic() + 60
    while demo.locator("#trades-body tr[data-id]").count() < 8 and time.monotonic() < deadline:
        demo.wait_for_timeout(250)
    assert demo.evaluate("window.__sameDocument") is True, "the page reloaded"
    assert demo.locator("#equity-chart canvas").count() > 0
    _shot(demo, "02-dashboard-running")

    demo.get_by_role("button", name="Stop bot").click()
    expect(demo.locator("#bot-state")).to_have_text("Stopped", timeout=30_000)
    expect(demo.get_by_role("button", name="Start bot")).to_be_enabled()
    assert demo.evaluate("window.__sameDocument") is True


def test_trades_page_filters_and_links_each_trade_to_its_decision(
    demo: Page, server: LocalServer
) -> None:
    demo.get_by_role("link", name="Trades", exact=True).click()
    expect(demo.get_by_role("heading", name="Trades")).to_be_visible()
    table = demo.locator("#trade-table")
    for column in ("Swap fee", "Impact bps", "Gas USD", "Status", "Decision"):
        expect(table.get_by_role("columnheader", name=column)).to_be_visible()
    expect(table.locator("tbody tr[data-id]").first).to_be_visible()
    _shot(demo, "03-trades")

    demo.get_by_label("Side").select_option("SELL")  # htmx swaps the table in place
    expect(demo).to_have_url(re.compile(r"side=SELL"))
    sides = table.locator("tbody tr[data-id] .side")
    expect(sides.first).to_be_visible()
    assert set(sides.all_inner_texts()) == {"SELL"}
    demo.get_by_label("Side").select_option("")
    expect(demo).not_to_have_url(re.compile(r"side=SELL"))

    demo.locator("#trade-table a.decision-link").first.click()
    expect(demo.get_by_role("heading", name="Reasoning")).to_be_visible()
    expect(demo.locator(".reasoning")).not_to_be_empty()
    expect(demo.get_by_role("heading", name="Trades it caused")).to_be_visible()
    _shot(demo, "04-decision")


def test_configuration_shows_a_field_error_next_to_the_field(
    demo: Page, server: LocalServer
) -> None:
    demo.goto(f"{server.base}/paper-trading/config/")
    stop_loss = demo.get_by_label("Stop loss (%)")
    stop_loss.fill("150")
    demo.get_by_role("button", name="Save configuration").click()
    error = demo.locator("#stop_loss_percent-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("100")
    expect(stop_loss).to_have_attribute("aria-invalid", "true")
    expect(demo.locator("#config-status")).to_contain_text("need fixing")
    _shot(demo, "05-config-error")

    stop_loss.fill("7.5")
    demo.get_by_role("button", name="Save configuration").click()
    expect(demo.locator("#config-status")).to_contain_text("Saved")
    expect(error).to_be_hidden()
    saved = demo.request.get(f"{server.base}/paper-trading/api/configuration/").json()
    assert saved["stop_loss_percent"] == "7.50"


def test_analytics_draws_every_chart_and_exports_csv(demo: Page, server: LocalServer) -> None:
    demo.goto(f"{server.base}/paper-trading/analytics/")
    expect(demo.locator("body[data-charts-ready]")).to_have_count(1)
    containers = demo.locator("[data-chart]")
    assert containers.count() >= 3  # equity, drawdown and at least one token
    for index in range(containers.count()):
        canvas = containers.nth(index).locator("canvas").first
        expect(canvas).to_be_visible()
        box = canvas.bounding_box()
        assert box is not None, index
        assert box["width"] > 50, index
        assert box["height"] > 50, index
    expect(demo.locator("#per-token tbody tr").first).not_to_have_class("empty")
    for figure in ("Sharpe ratio", "Max drawdown", "Profit factor"):
        expect(demo.get_by_text(figure, exact=True)).to_be_visible()
    _shot(demo, "06-analytics")

    with demo.expect_download() as download_info:
        demo.get_by_role("link", name="Export trades (CSV)").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_text()
    header, *rows = text.strip().splitlines()
    assert header.startswith("trade_id,created_at")
    assert "swap_fee_usd" in header
    assert "gas_cost_usd" in header
    assert len(rows) >= 1


def _bot(page: Page, account: str, action: str, **body: Any) -> dict[str, Any]:
    """Start or stop a bot through the API, with the page's own helper (it sends the CSRF token)."""
    result: dict[str, Any] = page.evaluate(
        """([action, body]) => window.dexpaper.api(`/paper-trading/api/bot/${action}/`,
               { method: "POST", body })""",
        [action, {"account": account, **body}],
    )
    return result


def _sum_column(page: Page, selector: str) -> int:
    return int(
        page.evaluate(
            """(sel) => [...document.querySelectorAll(sel)]
                .reduce((n, td) => n + Number(td.textContent.replace(/[^0-9.-]/g, "") || 0), 0)""",
            selector,
        )
    )


def test_trades_and_analytics_pages_follow_a_running_bot(demo: Page, server: LocalServer) -> None:
    account = _demo_account_id(server)
    demo.goto(f"{server.base}/paper-trading/trades/?page_size=25")
    expect(demo.locator("#conn")).to_have_attribute("data-state", "live")
    demo.evaluate("window.__sameDocument = true")
    count = demo.locator("#trade-count")
    before_text = count.inner_text()
    rows = demo.locator("#trade-table tbody tr[data-id]")
    before_rows = rows.count()
    before_first = rows.first.get_attribute("data-id")
    started = _bot(demo, account, "start", intel_level=10, prices="replay", speed="max")
    assert started["ok"], started
    try:
        expect(count).not_to_have_text(before_text, timeout=60_000)
        expect(demo.locator("#trades-live[data-refreshed]")).to_have_count(1)
        expect(rows.first).not_to_have_attribute("data-id", str(before_first))
        assert rows.count() >= min(before_rows + 1, 25)
        assert demo.evaluate("window.__sameDocument") is True, "the trades page reloaded"
        _shot(demo, "06a-trades-live")

        demo.goto(f"{server.base}/paper-trading/analytics/")
        expect(demo.locator("body[data-charts-ready]")).to_have_count(1)
        expect(demo.locator("#conn")).to_have_attribute("data-state", "live")
        demo.evaluate("window.__sameDocument = true")
        trades_column = "#per-token-body td:nth-child(2)"
        before_trades = _sum_column(demo, trades_column)
        before_fees = demo.locator("#fig-fees").inner_text()
        deadline = time.monotonic() + 60
        while _sum_column(demo, trades_column) <= before_trades and time.monotonic() < deadline:
            demo.wait_for_timeout(250)
        assert _sum_column(demo, trades_column) > before_trades
        expect(demo.locator("#fig-fees")).not_to_have_text(before_fees)
        expect(demo.locator("#analytics-live[data-refreshed]")).to_have_count(1)
        assert demo.evaluate("window.__sameDocument") is True, "the analytics page reloaded"
        assert demo.locator("#chart-equity canvas").count() > 0
        _shot(demo, "06b-analytics-live")
    finally:
        _bot(demo, account, "stop", reason="browser test done")  # unless it finished
    demo.goto(f"{server.base}/paper-trading/")
    expect(demo.locator("#bot-state")).to_have_text("Stopped", timeout=30_000)


def test_show_older_appends_older_thoughts(demo: Page, server: LocalServer) -> None:
    demo.goto(f"{server.base}/paper-trading/")
    expect(demo.locator("#conn")).to_have_attribute("data-state", "live")
    thoughts = demo.locator("#thoughts li[data-id]")
    expect(thoughts).to_have_count(20)
    first_ids = thoughts.evaluate_all("(rows) => rows.map((r) => r.dataset.id)")
    demo.get_by_role("button", name="Show older").click()
    expect(thoughts).not_to_have_count(20)
    ids = thoughts.evaluate_all("(rows) => rows.map((r) => r.dataset.id)")
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids), "a thought is shown twice"
    assert ids[:20] == first_ids, "older thoughts go below the newer ones"
    times = thoughts.locator(".thought-head .muted").all_inner_texts()
    assert times == sorted(times, reverse=True)
    expect(demo.get_by_role("button", name="Show older")).to_be_enabled()
    demo.locator("#thoughts").evaluate("(list) => { list.scrollTop = list.scrollHeight; }")
    demo.evaluate("window.scrollTo(0, 0)")
    _shot(demo, "06c-dashboard-older-thoughts")


def test_phone_and_dark_mode(browser: Browser, server: LocalServer, demo: Page) -> None:
    context = browser.new_context(
        viewport=PHONE, color_scheme="dark", storage_state=demo.context.storage_state()
    )
    page = context.new_page()
    page.goto(f"{server.base}/paper-trading/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than a phone"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(x) for x in background[background.index("(") + 1 : -1].split(",")[:3])
    assert red + green + blue < 150, background  # dark
    _shot(page, "07-dashboard-phone-dark")
    page.goto(f"{server.base}/paper-trading/analytics/")
    expect(page.locator("body[data-charts-ready]")).to_have_count(1)
    _shot(page, "08-analytics-phone-dark")
    context.close()


def test_dashboard_reconnects_after_a_server_restart(demo: Page, server: LocalServer) -> None:
    demo.goto(f"{server.base}/paper-trading/")
    conn = demo.locator("#conn")
    expect(conn).to_have_attribute("data-state", "live")
    server.stop()
    expect(conn).to_have_attribute("data-state", "reconnecting")
    expect(conn).to_contain_text("reconnecting")
    _shot(demo, "09-dashboard-disconnected")
    server.start()
    expect(conn).to_have_attribute("data-state", "live", timeout=40_000)


def _wallet(method: str, params: list[Any]) -> Any:
    if method == "eth_requestAccounts":
        return [WALLET.address.lower()]  # as many wallets do: the page must checksum it
    if method == "eth_chainId":
        return "0x2105"  # Base
    if method == "personal_sign":
        message = bytes.fromhex(str(params[0]).removeprefix("0x")).decode()
        assert params[1] == WALLET.address
        return "0x" + WALLET.sign_message(encode_defunct(text=message)).signature.hex()
    raise ValueError(f"unsupported wallet method {method}")


WALLET_SCRIPT = """
window.ethereum = {
  isMetaMask: false,
  request: ({ method, params }) => window.__wallet(method, params || []),
};
"""


def test_sign_in_with_ethereum_and_see_only_your_own_accounts(
    browser: Browser, server: LocalServer
) -> None:
    errors: list[str] = []
    page = _new_page(browser, errors)
    page.expose_function("__wallet", _wallet)
    page.add_init_script(WALLET_SCRIPT)
    page.goto(f"{server.base}/paper-trading/login/")
    page.get_by_role("button", name="Sign in with Ethereum").click()
    expect(page).to_have_url(f"{server.base}/paper-trading/")
    expect(page.get_by_text("Create your first paper trading account")).to_be_visible()
    assert page.locator(".who").get_attribute("title") == f"Signed in as {WALLET.address}"

    # Someone else's account: every page, the API and the socket say it does not exist.
    other = _demo_account_id(server)
    for path in ("", "trades/", "config/", "analytics/", "analytics/series/"):
        response = page.goto(f"{server.base}/paper-trading/{path}?account={other}")
        assert response is not None, path
        assert response.status == 404, path
    api = page.request.get(f"{server.base}/paper-trading/api/portfolio/?account={other}")
    assert api.status == 404
    page.goto(f"{server.base}/paper-trading/")
    close_code = page.evaluate(
        """(id) => new Promise((resolve) => {
            const ws = new WebSocket(`ws://${location.host}/ws/paper-trading/${id}/`);
            ws.onclose = (event) => resolve(event.code);
        })""",
        other,
    )
    assert close_code == 4404

    # Their own first account, then their (empty) dashboard.
    page.goto(f"{server.base}/paper-trading/")
    page.get_by_label("Name").fill("Wallet")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Wallet")).to_be_visible()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#fig-total")).to_have_text("$10,000.00")
    _shot(page, "10-wallet-dashboard")
    page.context.close()
    assert errors == []
