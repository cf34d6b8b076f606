"""One benchmark scenario per process, so its peak memory is its own.

Run as `python -m bench.scenarios NAME`; prints one JSON object.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.backtest_speed import dexpaper_run


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _engine_replay(interval: str, chain_slug: str) -> dict[str, Any]:
    from paper_trading.engine.backtest import run_backtest
    from paper_trading.engine.chains import get_chain
    from paper_trading.engine.prices.replay import ReplaySource
    from paper_trading.engine.strategies.intel_slider import IntelSliderEngine

    source = ReplaySource(interval=interval)
    started = time.perf_counter()
    result = run_backtest(
        chain=get_chain(chain_slug),
        source=source,
        timeline=source.timeline(),
        bar_seconds=source.interval_seconds,
        strategy=IntelSliderEngine(5),
    )
    seconds = time.perf_counter() - started
    return {"ticks": result.ticks, "seconds": seconds, "trades": len(result.trades)}


def _bot_replay() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dexproject.settings")
        import django

        django.setup()
        from django.core.management import call_command

        from paper_trading.models import PaperTradingSession

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        with open(os.devnull, "w") as quiet:
            call_command("run_paper_bot", "--speed", "max", verbosity=0, stdout=quiet)
        seconds = time.perf_counter() - started
        session = PaperTradingSession.objects.get()
        return {"ticks": session.total_ticks, "seconds": seconds, "trades": session.total_trades}


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "engine_replay_1h": lambda: _engine_replay("1h", "arbitrum"),
    "engine_replay_15m": lambda: _engine_replay("15m", "arbitrum"),
    "bot_replay_1h": _bot_replay,
    "backtest_ma_crossover_1h": dexpaper_run,
}


def main() -> None:
    name = sys.argv[1]
    figures = SCENARIOS[name]()
    figures["ticks_per_second"] = figures["ticks"] / figures["seconds"]
    if "bars" in figures:  # candles x tokens, for backtests
        figures["bars_per_second"] = figures["bars"] / figures["seconds"]
    figures["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
