"""`manage.py gas_report`: a backtest's trades replayed under every gas strategy, and bad input."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

#: 120 hourly bars of the shipped data: 80 ticks after the Intel slider's 40-bar warm-up.
PERIOD = ["--intel", "8", "--from", "2025-12-10", "--to", "2025-12-15"]
#: Too short for ma_crossover's 10/30 averages to cross once after their warm-up.
NO_CROSSING = ["--from", "2025-12-10", "--to", "2025-12-11T08:00"]
STRATEGIES = ["legacy", "slow", "standard", "fast", "wait_for_cheaper"]


def gas_report(*args: str) -> str:
    out = StringIO()
    call_command("gas_report", *args, stdout=out)
    return out.getvalue()


def _report(tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    path = tmp_path / "gas.json"
    printed = gas_report(*PERIOD, *args, "--output", str(path))
    return printed, json.loads(path.read_text())


def test_it_prints_the_strategies_side_by_side_and_writes_the_figures(tmp_path: Path) -> None:
    printed, doc = _report(tmp_path)

    assert (doc["chain"], doc["strategy"], doc["params"], doc["seed"]) == (
        "ethereum", "intel_slider", {"level": "8"}, 0,
    )  # fmt: skip
    assert doc["period"] == ["2025-12-11T16:00:00+00:00", "2025-12-15T00:00:00+00:00"]
    swaps = doc["swaps"]
    assert 0 < swaps <= doc["backtest_trades"]
    rows = {r["strategy"]: r for r in doc["strategies"]}
    assert list(rows) == STRATEGIES
    for name, r in rows.items():
        assert r["transactions"] == swaps
        assert r["included"] + r["reverted"] + r["dropped"] == swaps
        rates = (r[f"{k}_rate_percent"] for k in ("included", "reverted", "dropped"))
        assert sum(Decimal(x) for x in rates) == pytest.approx(Decimal(100), abs=Decimal("0.001"))
        # Every swap landed or was dropped; gas per included swap is the whole bill over them.
        per_included = Decimal(r["gas_usd"]) / r["included"]
        assert abs(Decimal(r["gas_per_included_usd"]) - per_included) < Decimal("1e-8")
        legacy = Decimal(rows["legacy"]["gas_per_included_usd"])
        savings = (legacy - Decimal(r["gas_per_included_usd"])) / legacy * 100
        assert abs(Decimal(r["savings_vs_legacy_percent"]) - savings) < Decimal("0.0001")
        assert f"\n{name} " in printed
        assert f"${Decimal(r['gas_usd']):,.2f}" in printed
    # fast bids the 90th percentile tip and lands first; legacy is the baseline.
    assert rows["fast"]["mean_delay_blocks"] == "1.0000"
    assert rows["legacy"]["savings_vs_legacy_percent"] == "0.0000"
    best = max(STRATEGIES[1:], key=lambda n: Decimal(rows[n]["savings_vs_legacy_percent"]))
    best_savings = Decimal(rows[best]["savings_vs_legacy_percent"])
    assert f"Claimed: 23.1% savings over legacy. Measured: best {best} {best_savings:+.1f}%" in (
        printed
    )
    assert f"JSON result: {tmp_path / 'gas.json'}" in printed


def test_the_same_seed_gives_the_same_report_and_another_seed_another(tmp_path: Path) -> None:
    first, doc = _report(tmp_path)
    again, same = _report(tmp_path)
    assert (again, same) == (first, doc)
    _, other = _report(tmp_path, "--seed", "1")
    assert other["strategies"] != doc["strategies"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--chain", "nowhere"], "--chain"),
        (["--strategy", "ma_crossover", "--intel", "3"], "--intel"),
        (["--param", "level"], "--param"),
        (["--intel", "8", "--param", "nonsense=1"], "--param"),
        (["--from", "2025-12-15", "--to", "2025-12-10"], "--to"),
        (["--data", "/no/such/folder"], "--data"),
        (["--bar", "7x"], "--bar"),
        (["--strategy", "ma_crossover", *NO_CROSSING], "--strategy"),
        (["--intel", "8", "--output", "/no/such/folder/gas.json"], "--output"),
    ],
)
def test_bad_input_names_the_option(args: list[str], option: str) -> None:
    with pytest.raises(CommandError, match=f"^{option}: "):
        gas_report(*args)
