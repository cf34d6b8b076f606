"""A paper bot's memory stays flat over a long run: bench/soak.py at CI size, and a leak it catches.

`python -m bench.soak --ticks 100000` is the full soak; here the same code runs 3,000 ticks.
Those are mostly the bot's warm-up, so the soak's own slope bound for short runs applies (20 MB
per 10,000 ticks instead of 1): it fails a bot that keeps 2 KB per tick, and the leaking
strategy below (4 KB kept per decision, 28 KB per tick) fails both memory checks. The bot's
peak RSS must stay within the soak's absolute bound (100 MB) here too.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import override_settings

from bench.soak import MAX_PEAK_RSS_MB, Sample, memory
from paper_trading.models import PaperTradingAccount

LEAKY_STRATEGY = textwrap.dedent(
    """
    from paper_trading.engine.strategies.intel_slider import IntelSliderEngine

    KEPT = []


    class LeakyIntel(IntelSliderEngine):
        name = "leaky_intel"

        def decide(self, view):
            KEPT.append(bytearray(4096))  # never freed: a leak of 4 KB per decision
            return super().decide(view)
    """
)


def _soak(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    results = tmp_path / "results"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--sample-seconds",
            "0.2",
            "--database-url",
            f"sqlite:///{tmp_path / 'soak.sqlite3'}",
            "--results",
            str(results),
            *options,
        ],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return run, json.loads((results / "soak-latest.json").read_text())


def _targets(document: Any) -> dict[str, Any]:
    return {t["metric"]: t for t in document["targets"]}


@pytest.mark.own_database
@pytest.mark.slow
def test_3000_replay_ticks_run_clean_with_flat_memory(tmp_path: Path) -> None:
    run, document = _soak(tmp_path, "--ticks", "3000")
    context = f"{run.stdout}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, context
    assert document["ok"], context
    targets = _targets(document)
    assert targets["errors"]["value"] == 0, document["result"]["errors"]
    assert targets["ticks"]["value"] == 3000
    assert targets["trade decisions in the last 10% of ticks"]["value"] >= 1
    assert targets["rss_growth_mb (last 10% - 10-20%)"]["ok"], context
    assert targets["rss_slope_mb_per_10k_ticks"]["ok"], context
    peak = targets["rss_peak_mb"]
    assert (peak["kind"], peak["bound"]) == ("max", MAX_PEAK_RSS_MB)
    assert peak["value"] <= MAX_PEAK_RSS_MB, context
    result = document["result"]
    assert result["sessions"] == [["STOPPED", 3000]]
    assert result["verify_exit"] == 0
    assert result["recording"]["copies"] == 3
    # The bot's RSS was sampled while it ticked, all along the run.
    ticks = [s["ticks"] for s in result["samples"]]
    assert ticks == sorted(ticks)
    assert ticks[-1] >= 2700
    assert len(ticks) >= 50
    assert "rss_slope_mb_per_10k_ticks" in run.stdout


#: Modules a replaying bot has no use for, and what they cost in RSS when it imported them anyway
#: (the apps' packages themselves are loaded by Django's settings: only these parts are heavy).
UNUSED_IN_A_BOT = {
    "rest_framework.serializers": "the REST API, for realtime messages no socket hears (~20 MB)",
    "celery.app": "the Celery app, for tasks it never sends (~10 MB)",
    "eth_abi": "mempool decoding, without a mempool source (~15 MB)",
    "redis": "the Redis client, without REDIS_URL (~5 MB)",
    "talib": "TA-Lib, for strategies it does not run (~5 MB)",
}


@pytest.mark.own_database
def test_a_replaying_bot_imports_only_what_it_uses(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}"}
    env.pop("REDIS_URL", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=settings.BASE_DIR, env=env, check=True)
    bot = ["run_paper_bot", "--prices", "replay", "--speed", "max", "--max-ticks", "5", "-v0"]
    script = (
        "import json, sys\n"
        "from django.core.management import execute_from_command_line\n"
        f"execute_from_command_line(['manage.py', *{bot!r}])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "dexproject.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = set(json.loads(run.stdout.splitlines()[-1]))
    assert "paper_trading" in loaded
    assert {m: why for m, why in UNUSED_IN_A_BOT.items() if m in loaded} == {}


@pytest.mark.own_database
@pytest.mark.slow
def test_a_bot_that_leaks_fails_the_soak(tmp_path: Path) -> None:
    strategy = tmp_path / "leaky.py"
    strategy.write_text(LEAKY_STRATEGY)
    run, document = _soak(
        tmp_path, "--ticks", "1200", "--strategy", f"{strategy}:LeakyIntel", "--param", "level=1"
    )
    assert run.returncode == 1, run.stdout
    assert not document["ok"]
    targets = _targets(document)
    assert targets["errors"]["value"] == 0, document["result"]["errors"]
    growth = targets["rss_growth_mb (last 10% - 10-20%)"]
    slope = targets["rss_slope_mb_per_10k_ticks"]
    # 28 KB per tick over the ~850 ticks between the windows' middles: ~24 MB.
    assert growth["ok"] is False, growth
    assert growth["value"] > 15, growth
    assert slope["ok"] is False, slope
    assert slope["value"] > 150, slope
    assert "FAIL" in run.stdout


def test_memory_windows_are_taken_by_tick() -> None:
    # 1,000 ticks: flat at 100 MB, then 5 MB more from tick 600 on; one sample before tick 1.
    samples = [Sample(0.0, 0, 0, 20.0)] + [
        Sample(t / 100, t, 0, 100.0 + 5 * (t >= 600)) for t in range(1, 1001)
    ]
    m = memory(samples, 1000)
    assert m is not None
    assert (m.start_mb, m.peak_mb, m.end_mb) == (100.0, 105.0, 105.0)
    assert (m.early_median_mb, m.late_median_mb, m.growth_mb) == (100.0, 105.0, 5.0)
    assert m.slope_mb_per_10k_ticks > 0
    # Too few samples to fill the windows: no figures rather than made-up ones.
    assert memory(samples[:150], 1000) is None


@pytest.mark.django_db
def test_a_bot_keeps_no_sql_log_under_debug(account: PaperTradingAccount) -> None:
    """DEBUG (the development default) logs every query; a bot thread must not keep them."""
    with override_settings(DEBUG=True):
        call_command(
            "run_paper_bot",
            "--account",
            account.name,
            "--prices",
            "replay",
            "--max-ticks",
            "200",
            verbosity=0,
            stdout=io.StringIO(),
        )
        # ~6 queries per tick were kept before; now only those after the last tick remain.
        assert account.sessions.get().total_ticks == 200
        assert len(connection.queries) < 60, len(connection.queries)
