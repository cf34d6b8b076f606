"""Transaction badges and gas per strategy in a real browser, from bots run with gas strategies.

Two replay bots write the demo account's trades on public-mempool chains: one on Ethereum with
the slow gas tier and a tight slippage tolerance (swaps wait, get replaced, revert), one on Base
with the fast tier, a loose tolerance and only UNI, whose thin V2 pool makes sandwiches pay.
The pages must show what happened.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.support import CHROMIUM, MANAGE, LocalServer, launch_chromium

if not Path(CHROMIUM).exists():  # CI installs it (.ci/services.sh); a skip fails CI
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = pytest.mark.own_database

ARTIFACTS = Path(__file__).parent / "artifacts"


def _configure(server: LocalServer, **settings: str) -> None:
    assignments = ", ".join(f"{name} = ?" for name in settings)
    with sqlite3.connect(server.db, timeout=30) as conn:
        conn.execute(
            f"UPDATE paper_trading_paperstrategyconfiguration SET {assignments}",
            tuple(settings.values()),
        )


def _run_bot(server: LocalServer, chain: str, ticks: int) -> None:
    subprocess.run(
        [
            sys.executable,
            MANAGE,
            "run_paper_bot",
            "--account",
            "Demo",
            "--user",
            "demo",
            "--chain",
            chain,
            "--prices",
            "replay",
            "--intel",
            "10",
            "--max-ticks",
            str(ticks),
            "--new-session",
            "-v0",
        ],
        env=server.env,
        timeout=300,
        check=True,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    local = LocalServer(tmp_path_factory.mktemp("browser-tx"))
    local.migrate()
    local.start()
    _configure(local, gas_strategy="slow", slippage_tolerance_percent="0.05")
    _run_bot(local, "ethereum", 200)
    _configure(local, gas_strategy="fast", slippage_tolerance_percent="2", allowed_tokens='["UNI"]')
    _run_bot(local, "base", 200)
    yield local
    local.stop()


@pytest.fixture(scope="module")
def page(server: LocalServer) -> Iterator[Page]:
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser: Browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(20_000)
        signed_in = context.new_page()
        signed_in.on("pageerror", lambda exc: errors.append(str(exc)))
        signed_in.goto(f"{server.base}/paper-trading/login/")
        signed_in.get_by_label("Username").fill("demo")
        signed_in.get_by_label("Password").fill(server.password)
        signed_in.get_by_role("button", name="Sign in", exact=True).click()
        expect(signed_in).to_have_url(f"{server.base}/paper-trading/")
        yield signed_in
        browser.close()
    assert errors == []


def test_trades_table_shows_what_each_transaction_went_through(
    page: Page, server: LocalServer
) -> None:
    page.goto(f"{server.base}/paper-trading/trades/?page_size=100")
    statuses = page.locator("#trade-table td.tx-status")
    expect(statuses.first).to_be_visible()
    for label, tone in (
        ("reverted", "warn"),
        ("sandwiched", "bad"),
        ("pending", "info"),
        ("replaced", "info"),
    ):
        badge = statuses.locator(f"span.tag.{tone}", has_text=label).first
        expect(badge).to_be_visible()
        assert badge.get_attribute("title"), label
    page.screenshot(path=str(ARTIFACTS / "tx-01-trades.png"), full_page=True)

    # The dashboard's live table draws the same badges from the snapshot it starts from.
    page.goto(f"{server.base}/paper-trading/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#trades-body span.tag.bad", has_text="sandwiched").first).to_be_visible()


def test_analytics_shows_gas_per_strategy(page: Page, server: LocalServer) -> None:
    page.goto(f"{server.base}/paper-trading/analytics/")
    table = page.locator("#per-gas-strategy")
    expect(table.get_by_role("columnheader", name="Mean inclusion delay (blocks)")).to_be_visible()
    rows = page.locator("#per-gas-strategy-body tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").first).to_have_text("fast")
    expect(rows.nth(1).locator("td").first).to_have_text("slow")
    for index in range(2):
        cells = rows.nth(index).locator("td")
        assert int(cells.nth(1).inner_text()) > 0
        assert cells.nth(2).inner_text().startswith("$")
        assert float(cells.nth(3).inner_text()) >= 1  # no swap lands in its own block
        assert cells.nth(4).inner_text().endswith("%")
    # The slow tier's tight-tolerance swaps revert; the fast tier's loose ones get sandwiched.
    assert rows.nth(1).locator("td").nth(4).inner_text() != "0.0%"
    assert int(rows.nth(0).locator("td").nth(6).inner_text()) > 0
    page.screenshot(path=str(ARTIFACTS / "tx-02-analytics.png"), full_page=True)


def test_trades_page_shows_swaps_in_flight_from_the_socket(page: Page, server: LocalServer) -> None:
    with sqlite3.connect(server.db, timeout=30) as conn:
        (account,) = conn.execute(
            "SELECT account_id FROM paper_trading_papertradingaccount WHERE name = 'Demo'"
        ).fetchone()
    page.goto(f"{server.base}/paper-trading/trades/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    # A tick's messages arrive in one frame, so the in-flight list is filled and emptied at once:
    # keep what it showed.
    page.evaluate(
        """() => {
             window.__inFlight = [];
             new MutationObserver((records) => records.forEach((r) =>
               r.addedNodes.forEach((n) => window.__inFlight.push(n.textContent))))
               .observe(document.getElementById("tx-pending"), { childList: true });
           }"""
    )
    body = {"account": str(uuid.UUID(str(account))), "intel_level": 10, "prices": "replay"}
    started = page.evaluate(
        """(body) => window.dexpaper.api("/paper-trading/api/bot/start/",
               { method: "POST", body })""",
        {**body, "chain": "base", "speed": "max"},
    )
    assert started["ok"], started
    try:
        expect(page.locator("#trades-live[data-tx-updates]")).to_have_count(1, timeout=60_000)
        page.wait_for_function(
            "() => window.__inFlight.some((text) => text.startsWith('submitted UNI attempt 1'))"
        )
    finally:
        page.evaluate(
            """(body) => window.dexpaper.api("/paper-trading/api/bot/stop/",
                   { method: "POST", body })""",
            {"account": body["account"], "reason": "browser test done"},
        )
