"""The backtest's HTML report opened from disk in a real browser: self-contained, charts drawn.

The report comes from the real command line (`manage.py backtest ... --output DIR`); Chromium
opens it at a file:// URL with nothing else to fetch. A chart counts as drawn when its canvas
has a size and many colours (not a blank background), and buy markers as drawn when the
dashboard's "buy" green shows up on a token's chart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import CHROMIUM, ROOT, launch_chromium

if not Path(CHROMIUM).exists():  # CI installs it (.ci/services.sh); a skip fails CI
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

from playwright.sync_api import Page, sync_playwright

ARTIFACTS = Path(__file__).parent / "artifacts"

#: Per chart container: its largest canvas's size, distinct colours, and pixels of `rgb`.
CANVAS_PROBE = """([container, rgb]) => {
  const canvases = [...container.querySelectorAll("canvas")];
  const area = (c) => (c ? c.width * c.height : -1);
  const big = canvases.reduce((a, b) => (area(a) >= area(b) ? a : b), null);
  if (!big || !big.width || !big.height) return { width: 0, height: 0, colours: 0, matches: 0 };
  const pixels = big.getContext("2d").getImageData(0, 0, big.width, big.height).data;
  const colours = new Set();
  let matches = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
    const near = Math.abs(pixels[i] - rgb[0]) + Math.abs(pixels[i + 1] - rgb[1])
      + Math.abs(pixels[i + 2] - rgb[2]);
    if (near < 24) matches += 1;
  }
  return { width: big.width, height: big.height, colours: colours.size, matches };
}"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("backtest-report")
    done = subprocess.run(
        [sys.executable, "manage.py", "backtest", "--intel", "9", "--chain", "arbitrum",
         "--from", "2025-12-10", "--to", "2025-12-20", "--output", str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "100%" in done.stderr  # the progress bar ran to the end
    doc = json.loads((folder / "backtest.json").read_text())
    return folder / "backtest.html", doc


@pytest.fixture(scope="module")
def page(report: tuple[Path, dict[str, Any]]) -> Iterator[tuple[Page, list[str], list[str]]]:
    html, _ = report
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        tab = context.new_page()
        errors: list[str] = []
        requests: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.on("request", lambda request: requests.append(request.url))
        tab.goto(html.as_uri())
        tab.wait_for_selector("body[data-charts-drawn]")
        tab.wait_for_timeout(300)  # the charts paint on the next animation frame
        tab.screenshot(path=str(ARTIFACTS / "backtest-report.png"), full_page=True)
        yield tab, errors, requests
        browser.close()


def _rgb(page: Page, variable: str) -> list[int]:
    colour = page.evaluate(
        "(name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim()",
        variable,
    )
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


def test_the_report_needs_nothing_but_the_file(
    page: tuple[Page, list[str], list[str]], report: tuple[Path, dict[str, Any]]
) -> None:
    _, errors, requests = page
    assert errors == []
    assert requests == [report[0].as_uri()]


def test_every_chart_is_drawn_and_token_charts_show_buys(
    page: tuple[Page, list[str], list[str]], report: tuple[Path, dict[str, Any]]
) -> None:
    tab, _, _ = page
    doc = report[1]
    tokens = doc["config"]["tokens"]
    assert tab.get_attribute("body", "data-charts-drawn") == str(2 + len(tokens))
    green = _rgb(tab, "--pos")
    for box in tab.query_selector_all("[data-chart]"):
        probe = tab.evaluate(CANVAS_PROBE, [box, green])
        assert probe["width"] > 200, probe
        assert probe["height"] > 100, probe
        assert probe["colours"] > 20, (box.get_attribute("data-chart"), probe)  # not blank
    bought = {t["symbol"] for t in doc["trades"] if t["side"] == "BUY"}
    assert bought
    for symbol in bought:
        chart = tab.query_selector(f'[data-chart="token"][data-token="{symbol}"]')
        assert chart is not None
        assert tab.evaluate(CANVAS_PROBE, [chart, green])["matches"] > 10, symbol


def test_the_tables_hold_every_token_and_trade(
    page: tuple[Page, list[str], list[str]], report: tuple[Path, dict[str, Any]]
) -> None:
    tab, _, _ = page
    doc = report[1]
    assert len(doc["trades"]) > 5
    rows = tab.locator("#per-token tbody tr")
    assert rows.count() == len(doc["per_token"])
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())] == [
        r["symbol"] for r in doc["per_token"]
    ]
    trades = tab.locator("#trades tbody tr")
    assert trades.count() == len(doc["trades"])
    first = trades.first.locator("td")
    assert first.nth(1).inner_text() == doc["trades"][0]["symbol"]
    assert first.nth(2).inner_text() == doc["trades"][0]["side"]
    assert tab.locator("#summary .figure").count() == 10
    assert f"Trades ({len(doc['trades'])})" in tab.locator("#tr-title").inner_text()
    exits = tab.locator("#exits tbody tr")
    assert [exits.nth(i).locator("td").first.inner_text() for i in range(exits.count())] == [
        r["reason"] for r in doc["per_exit_reason"]
    ]
    assert doc["per_exit_reason"]  # the run sold, so the table has rows to show
    periods = tab.locator("#periods tbody tr")
    assert [periods.nth(i).locator("td").first.inner_text() for i in range(periods.count())] == [
        "2025-12-01"
    ]
    cells = periods.first.locator("td")
    assert cells.nth(4).inner_text() == str(len(doc["trades"]))
    assert tab.locator("#pe-title").inner_text() == "Per month (UTC)"
