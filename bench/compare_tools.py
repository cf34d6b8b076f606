"""The SMA crossover in backtesting.py and freqtrade, timed: run by `bench.backtest_speed`.

Runs inside the comparison virtualenv (bench/.venv-compare, `make bench-compare-env`), never in
the project's: it imports nothing from the project. For each tool that is installed it times
the backtest alone (candles already in memory, indicators included), `--repeats` times, and
prints one JSON object: tool -> {bars, trades, seconds: [...], cpu_seconds: [...]} or {error}.

Freqtrade normally downloads the exchange's market list; here two static spot markets stand in
for it, so the run needs no network.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

Candles = dict[str, pd.DataFrame]


def load(data_dir: Path, symbols: list[str], interval: str) -> Candles:
    """`SYMBOL -> candles indexed by open time`, from the replay files (gzip CSV)."""
    frames = {}
    for symbol in symbols:
        frame = pd.read_csv(data_dir / f"{symbol}_USDT-{interval}.csv.gz")
        frame["date"] = pd.to_datetime(frame.pop("timestamp"), utc=True)
        frames[symbol] = frame[["date", "open", "high", "low", "close", "volume"]]
    return frames


def backtesting_py(candles: Candles, fast: int, slow: int, fee: float) -> Callable[[], int]:
    """One Backtest per symbol (backtesting.py trades a single asset); returns trades made."""
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    class SmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(SMA, self.data.Close, fast)
            self.slow = self.I(SMA, self.data.Close, slow)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.buy(size=0.1)
            elif crossover(self.slow, self.fast):
                self.position.close()

    frames = [frame.set_index("date").rename(columns=str.capitalize) for frame in candles.values()]

    def run() -> int:
        trades = 0
        for frame in frames:
            backtest = Backtest(frame, SmaCross, cash=10_000_000, commission=fee)
            trades += int(backtest.run()["# Trades"])
        return trades

    return run


_FREQTRADE_STRATEGY = """
from freqtrade.strategy import IStrategy
from pandas import DataFrame
from technical.qtpylib import crossed_above, crossed_below
import talib.abstract as ta


class SmaCross(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "{interval}"
    minimal_roi = {{"0": 100}}
    stoploss = -0.99
    startup_candle_count = {slow}

    def populate_indicators(self, df: DataFrame, metadata: dict) -> DataFrame:
        df["fast"] = ta.SMA(df, timeperiod={fast})
        df["slow"] = ta.SMA(df, timeperiod={slow})
        return df

    def populate_entry_trend(self, df: DataFrame, metadata: dict) -> DataFrame:
        df.loc[crossed_above(df["fast"], df["slow"]), "enter_long"] = 1
        return df

    def populate_exit_trend(self, df: DataFrame, metadata: dict) -> DataFrame:
        df.loc[crossed_below(df["fast"], df["slow"]), "exit_long"] = 1
        return df
"""


def freqtrade(
    candles: Candles, fast: int, slow: int, fee: float, interval: str, folder: Path
) -> Callable[[], int]:
    """Freqtrade's own backtesting over all symbols at once; returns trades made."""
    from freqtrade.configuration.timerange import TimeRange
    from freqtrade.enums import RunMode
    from freqtrade.exchange import Exchange
    from freqtrade.optimize.backtesting import Backtesting

    markets = {f"{s}/USDT": _market(s) for s in candles}

    def static_markets(self: Any, force: bool = False, *, load_leverage_tiers: bool = True) -> None:
        self._api.set_markets(markets)
        self._api_async.set_markets(markets)
        self._markets = self._api.markets
        self._last_markets_refresh = 1

    Exchange.reload_markets = static_markets
    (folder / "sma_cross.py").write_text(
        _FREQTRADE_STRATEGY.format(fast=fast, slow=slow, interval=interval)
    )
    pairs = list(markets)
    config = {
        "strategy": "SmaCross",
        "strategy_path": str(folder),
        "user_data_dir": folder,
        "datadir": folder,
        "timeframe": interval,
        "stake_currency": "USDT",
        "stake_amount": 1_000_000,
        "dry_run_wallet": 10_000_000,
        "max_open_trades": len(pairs),
        "fee": fee,
        "runmode": RunMode.BACKTEST,
        "export": "none",
        "backtest_cache": "none",
        "exchange": {
            "name": "binance",
            "pair_whitelist": pairs,
            "key": "",
            "secret": "",
            "ccxt_config": {},
            "ccxt_async_config": {},
        },
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "same", "use_order_book": False},
        "exit_pricing": {"price_side": "same", "use_order_book": False},
        "trading_mode": "spot",
        "margin_mode": "",
        "candle_type_def": "spot",
        "dataformat_ohlcv": "feather",
        "original_config": {},
        "internals": {},
    }
    data = {f"{s}/USDT": frame for s, frame in candles.items()}

    def run() -> int:
        backtesting = Backtesting(config)
        backtesting.backtest_one_strategy(
            backtesting.strategylist[0], data, TimeRange(None, None, 0, 0)
        )
        return len(backtesting.all_bt_content["SmaCross"]["results"])

    return run


def _market(base: str) -> dict[str, Any]:
    tick = 1e-8
    return {
        "id": f"{base}USDT",
        "symbol": f"{base}/USDT",
        "base": base,
        "quote": "USDT",
        "baseId": base,
        "quoteId": "USDT",
        "active": True,
        "type": "spot",
        "spot": True,
        "margin": False,
        "swap": False,
        "future": False,
        "option": False,
        "contract": False,
        "linear": None,
        "inverse": None,
        "contractSize": None,
        "settle": None,
        "settleId": None,
        "precision": {"amount": tick, "price": tick, "base": tick, "quote": tick},
        "limits": {
            "amount": {"min": tick, "max": None},
            "price": {"min": tick, "max": None},
            "cost": {"min": 1.0, "max": None},
            "leverage": {"min": None, "max": None},
        },
        "taker": 0.001,
        "maker": 0.001,
        "info": {},
    }


def _timed(run: Callable[[], int], repeats: int) -> dict[str, Any]:
    seconds: list[float] = []
    cpu_seconds: list[float] = []
    trades = 0
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        trades = run()
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    return {"trades": trades, "seconds": seconds, "cpu_seconds": cpu_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--symbols", default="ETH,BTC")
    parser.add_argument("--interval", default="1h")
    parser.add_argument("--fast", type=int, default=10)
    parser.add_argument("--slow", type=int, default=30)
    parser.add_argument("--fee", type=float, default=0.0005, help="per fill, as a fraction")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    candles = load(args.data, args.symbols.split(","), args.interval)
    bars = sum(len(frame) for frame in candles.values())
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        makers: dict[str, Callable[[], Callable[[], int]]] = {
            "backtesting.py": lambda: backtesting_py(candles, args.fast, args.slow, args.fee),
            "freqtrade": lambda: freqtrade(
                candles, args.fast, args.slow, args.fee, args.interval, Path(folder)
            ),
        }
        for tool, make in makers.items():
            try:
                run = make()
            except ImportError as exc:
                results[tool] = {"error": f"not installed ({exc.name}): run make bench-compare-env"}
                continue
            results[tool] = {"bars": bars, **_timed(run, args.repeats)}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
