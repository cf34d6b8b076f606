"""Strategies found by name, dotted path or file, and run by the engine like the built-ins."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from paper_trading.engine.backtest import run_backtest
from paper_trading.engine.chains import get_chain
from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.engine.strategies.catalog import (
    BUILTIN,
    StrategyChoiceError,
    build_strategy,
    load_strategy_class,
    parse_params,
    portable_spec,
    resolve_strategy,
)
from paper_trading.engine.strategies.intel_slider import IntelSliderEngine
from paper_trading.engine.strategies.ma_crossover import MACrossover

#: A user's strategy, written outside the package: above its EMA buy, below it sell.
USER_STRATEGY = textwrap.dedent(
    """
    from decimal import Decimal
    from types import MappingProxyType

    import talib

    from paper_trading.engine.strategies.base import (
        Action, Decision, MarketView, Parameter, Strategy,
    )


    class PriceOverEma(Strategy):
        name = "price_over_ema"
        parameters = MappingProxyType({"period": Parameter(20, 2, 100)})

        def __init__(self, period: int) -> None:
            self.period = period
            self.warmup_bars = period

        def indicators(self, closes):
            return {"ema": talib.EMA(closes, timeperiod=self.period)}

        def decide(self, view: MarketView) -> Decision:
            ema = view.indicators["ema"]
            above = float(view.price) > ema
            held = view.position is not None
            action = Action.HOLD
            if above and not held:
                action = Action.BUY
            elif not above and held:
                action = Action.SELL
            return Decision(
                action=action,
                symbol=view.symbol,
                size_usd=Decimal(500) if action is Action.BUY else Decimal(0),
                sell_fraction=Decimal(1) if action is Action.SELL else Decimal(0),
                confidence=Decimal(100),
                risk_score=Decimal(0),
                opportunity_score=Decimal(0),
                reasoning=f"price {view.price} vs EMA({self.period}) {ema:.2f}: {action}",
            )
    """
)


@pytest.fixture
def strategy_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_strategy.py"
    path.write_text(USER_STRATEGY)
    return path


def backtest_trades(spec: str, params: dict[str, object], ticks: int = 150) -> int:
    source = ReplaySource(symbols=["ETH", "BTC"])
    strategy = build_strategy(spec, params)
    result = run_backtest(
        chain=get_chain("base"),
        source=source,
        timeline=source.timeline()[: strategy.warmup_bars + ticks],
        bar_seconds=source.interval_seconds,
        strategy=strategy,
    )
    assert result.ticks == ticks
    return len(result.trades)


def test_a_user_strategy_from_a_file_outside_the_package_runs_a_backtest(
    strategy_file: Path,
) -> None:
    spec = f"{strategy_file}:PriceOverEma"
    cls = load_strategy_class(spec)
    assert cls.name == "price_over_ema"
    assert not cls.__module__.startswith("paper_trading")
    assert backtest_trades(spec, {"period": "10"}) > 2


def test_a_user_strategy_by_dotted_path(
    strategy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(strategy_file.parent))
    cls = load_strategy_class("my_strategy.PriceOverEma")
    assert cls.parameters["period"].default == 20
    assert backtest_trades("my_strategy.PriceOverEma", {}) > 2


def test_builtins_by_name_and_by_dotted_path() -> None:
    assert set(BUILTIN) == {"intel_slider", "ma_crossover", "rsi_reversion", "exit_all"}
    dotted = "paper_trading.engine.strategies.ma_crossover.MACrossover"
    assert load_strategy_class(dotted) is MACrossover
    assert backtest_trades("ma_crossover", {"fast_period": 5, "slow_period": 20}) > 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_strategy", "unknown strategy 'no_such_strategy'"),
        ("nowhere.Strategy", "cannot import 'nowhere'"),
        ("/no/such/file.py:Thing", "does not exist"),
        ("paper_trading.engine.money.usd", "does not name a Strategy subclass"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_strategy_class(spec)


def test_a_file_spec_is_stored_with_an_absolute_path(
    strategy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(strategy_file.parent)
    assert portable_spec("my_strategy.py:PriceOverEma") == f"{strategy_file}:PriceOverEma"
    assert portable_spec("ma_crossover") == "ma_crossover"


def test_resolving_a_choice_names_the_field_at_fault() -> None:
    choice = resolve_strategy("intel_slider", {}, intel_level=8)
    assert (choice.params, choice.intel_level) == ({"level": 8}, 8)
    assert isinstance(choice.strategy, IntelSliderEngine)
    assert resolve_strategy("intel_slider", {"level": "3"}, intel_level=8).intel_level == 3
    with pytest.raises(StrategyChoiceError) as bad_name:
        resolve_strategy("nope", {})
    assert bad_name.value.field == "strategy"
    with pytest.raises(StrategyChoiceError) as bad_param:
        resolve_strategy("ma_crossover", {"fast_period": 40, "slow_period": 30})
    assert bad_param.value.field == "strategy_params"
    assert "fast_period (40) must be shorter than slow_period (30)" in str(bad_param.value)


def test_command_line_params() -> None:
    assert parse_params(["fast_period=12", " size_percent = 5 "]) == {
        "fast_period": "12",
        "size_percent": "5",
    }
    with pytest.raises(ValueError, match="expected NAME=VALUE, got 'fast_period'"):
        parse_params(["fast_period"])
