"""Parameter search: the grid, the train/test windows, the ranking and the Optuna seed."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paper_trading.engine.backtest import BacktestConfig, OptionError, run_backtest
from paper_trading.engine.chains import get_chain
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.optimize import (
    METRICS,
    Figures,
    SearchSettings,
    grid,
    holdout_split,
    parameter_values,
    search,
    walk_forward_split,
)
from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.engine.strategies.base import Parameter
from paper_trading.engine.strategies.intel_slider import IntelSliderEngine
from paper_trading.engine.strategies.ma_crossover import MACrossover

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 8, tzinfo=UTC)
#: One token on Arbitrum over a week of the shipped hourly recording: 169 bars, fast runs.
CONFIG = BacktestConfig(
    strategy="intel_slider", chain="arbitrum", tokens=("WETH",), start=START, end=END
)


# -- the grid ------------------------------------------------------------------------------


def test_grid_enumerates_exactly_the_declared_steps() -> None:
    space = {
        "period": Parameter(3, 2, 4),
        "size": Parameter(0.5, 0.1, 0.5, step=0.2),
        "held": Parameter(7, 5, 9, step=2),
    }
    combos = list(grid(space, {"held": 9}))
    assert combos == [
        {"held": 9, "period": p, "size": s} for p in (2, 3, 4) for s in (0.1, 0.3, 0.5)
    ]


def test_integer_steps_stop_at_the_last_one_inside_the_range() -> None:
    slow = MACrossover.parameters["slow_period"]
    assert parameter_values("slow_period", slow) == list(range(3, 199, 5))


def test_a_grid_needs_a_step_for_continuous_parameters() -> None:
    with pytest.raises(OptionError, match=r"--method: ratio is a continuous parameter"):
        parameter_values("ratio", Parameter(0.5, 0.0, 1.0))


# -- windows -------------------------------------------------------------------------------


@given(bars=st.integers(10, 5000), fraction=st.floats(0.05, 0.95))
def test_holdout_windows_cover_the_period_without_overlap(bars: int, fraction: float) -> None:
    [fold] = holdout_split(bars, fraction)
    assert fold.train.start == 0
    assert fold.train.end == fold.test.start
    assert fold.test.end == bars
    assert len(fold.train) == round(bars * fraction)


def test_walk_forward_fold_boundaries() -> None:
    folds = walk_forward_split(100, 3, 0.7)
    assert [(f.train.start, f.train.end, f.test.start, f.test.end) for f in folds] == [
        (0, 44, 44, 62),
        (18, 62, 62, 81),
        (37, 81, 81, 100),
    ]


@given(bars=st.integers(50, 5000), folds=st.integers(1, 8), fraction=st.floats(0.3, 0.9))
def test_walk_forward_tests_tile_the_period_after_the_first_training_window(
    bars: int, folds: int, fraction: float
) -> None:
    windows = walk_forward_split(bars, folds, fraction)
    assert len(windows) == folds
    assert windows[0].train.start == 0
    assert windows[-1].test.end == bars
    for fold, following in itertools.pairwise(windows):
        assert fold.test.end == following.test.start
    for fold in windows:
        assert fold.train.end == fold.test.start  # trained only on bars before its test
        assert len(fold.train) == len(windows[0].train)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5])
def test_train_fraction_must_leave_both_windows(fraction: float) -> None:
    with pytest.raises(OptionError, match="--train-fraction"):
        holdout_split(100, fraction)


# -- the search ----------------------------------------------------------------------------


def test_best_in_sample_candidate_has_the_highest_score() -> None:
    """Every level re-run by hand with run_backtest on the training window gives the same order."""
    settings = SearchSettings(metric="total_return", workers=2, top=10)
    report = search(CONFIG, settings)

    [fold] = report.folds
    assert fold.evaluated == 10
    source = ReplaySource(CONFIG.data_dir, "1h")
    train = source.timeline(START, END)[fold.fold.train.start : fold.fold.train.end]
    by_hand = {}
    for level in range(1, 11):
        result = run_backtest(
            chain=get_chain("arbitrum"),
            source=source,
            timeline=train,
            bar_seconds=3600,
            strategy=IntelSliderEngine(level),
            config=TradingConfig(allowed_tokens=("WETH",)),
        )
        by_hand[level] = Figures.of(result)
    assert {c.params["level"]: c.train for c in fold.best} == by_hand
    best_score = max(METRICS["total_return"].score(f) or 0 for f in by_hand.values())
    assert fold.best[0].train_score == best_score
    scores = [c.train_score for c in fold.best]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    # The report's windows: training first, then the test window, together the whole period.
    assert fold.train_period[0] == report.period[0]
    assert fold.train_period[1] < fold.test_period[0]
    assert fold.test_period[1] == report.period[1]
    assert fold.best[0].test is not None
    assert fold.best[0].test.bars == len(fold.fold.test)  # warmed up on the bars before it


def test_walk_forward_reoptimises_each_fold_and_scores_it_out_of_sample() -> None:
    config = dataclasses.replace(CONFIG, end=datetime(2026, 1, 15, tzinfo=UTC))
    settings = SearchSettings(
        metric="total_return", split="walk-forward", folds=2, train_fraction=0.6, workers=2
    )
    report = search(config, settings)
    assert len(report.folds) == 2
    first, second = report.folds
    assert first.test_period[1] < second.test_period[0]
    assert second.train_period[1] < second.test_period[0]
    for fold in report.folds:
        assert len(fold.best) == 1
        assert fold.best[0].test is not None
    compounded = 1.0
    for fold in report.folds:
        assert fold.best[0].test is not None
        compounded *= 1 + fold.best[0].test.return_percent / 100
    assert report.out_of_sample_return_percent == pytest.approx((compounded - 1) * 100)


def test_optuna_search_is_reproducible_with_a_seed_on_any_number_of_workers() -> None:
    config = dataclasses.replace(
        CONFIG, strategy="ma_crossover", params={"size_percent": "20", "slow_period": "48"}
    )
    settings = SearchSettings(method="optuna", trials=10, workers=2, metric="total_return", top=3)
    first = search(config, settings).to_dict()
    again = search(config, dataclasses.replace(settings, workers=1)).to_dict()
    assert first == again
    tried = first["folds"][0]["best"]
    assert all(c["params"]["fast_period"] < c["params"]["slow_period"] for c in tried)


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "search_settings", "message"),
    [
        (CONFIG, SearchSettings(metric="luck"), r"--metric: unknown metric 'luck'"),
        (CONFIG, SearchSettings(trials=0), r"--trials: must be at least 1"),
        (
            dataclasses.replace(CONFIG, end=datetime(2026, 1, 3, tzinfo=UTC)),
            SearchSettings(),
            r"--from/--to: the training window has 34 bars, too few: it needs 40 to warm "
            r"intel_slider up and 24 to score",
        ),
        (
            CONFIG,
            SearchSettings(split="walk-forward", folds=0),
            r"--folds: must be at least 1",
        ),
        (
            dataclasses.replace(CONFIG, strategy="ma_crossover"),
            SearchSettings(),
            r"--max-grid: the grid has 79,200 candidates \(99 fast_period x 40 slow_period x "
            r"20 size_percent\)",
        ),
        (
            dataclasses.replace(CONFIG, params={"levle": "3"}),
            SearchSettings(),
            r"--param: intel_slider has no parameter levle \(known: level\)",
        ),
        (
            dataclasses.replace(CONFIG, params={"level": "11"}),
            SearchSettings(),
            r"--param: level: 11 is outside \[1, 10\]",
        ),
        (
            dataclasses.replace(CONFIG, strategy="nope"),
            SearchSettings(),
            r"--strategy: unknown strategy 'nope'",
        ),
    ],
)
def test_bad_input_names_the_option(
    config: BacktestConfig, search_settings: SearchSettings, message: str
) -> None:
    with pytest.raises(OptionError, match=message):
        search(config, search_settings)


def test_fewer_candidates_than_top_and_all_fixed() -> None:
    report = search(dataclasses.replace(CONFIG, params={"level": "3"}), SearchSettings(top=5))
    [fold] = report.folds
    assert report.space == {}
    assert [c.params for c in fold.best] == [{"level": 3}]
    assert fold.baseline is not None
    assert fold.baseline.params == {"level": 3}
    assert report.backtests == 2  # in and out of sample; the baseline is the same candidate
