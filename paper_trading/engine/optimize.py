"""Parameter search over a strategy's declared ranges, judged on data the search never saw.

Each candidate is scored on a training window; the best ones are then run on the window that
follows it, and both scores are reported side by side: a candidate that shines in sample and
falls apart out of sample is curve-fitted. Walk-forward repeats this over K consecutive windows,
re-optimising on each, as the strategy would really be run; its verdict is the out-of-sample
score across all the test windows.

Every candidate is a full `run_backtest` (the fills, fees and gas of paper trading) in a worker
process that loads the candles once. Optuna's asks are answered in batches in a fixed order, so
a seeded search gives the same result however the workers interleave.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import multiprocessing
import statistics
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from paper_trading.engine.backtest import (
    BacktestConfig,
    BacktestResult,
    OptionError,
    PreparedBacktest,
    prepare,
)
from paper_trading.engine.strategies.base import Parameter, Strategy

if TYPE_CHECKING:
    import optuna

Params = dict[str, int | float]
Method = Literal["grid", "optuna"]
Split = Literal["holdout", "walk-forward"]

#: Scored bars a window needs after the strategy's warm-up: fewer make every score noise.
MIN_SCORED_BARS = 24
#: Optuna candidates proposed before any of them is scored (run in parallel).
OPTUNA_BATCH = 8
#: Proposals per trial Optuna may make before a search gives up on finding accepted ones.
OPTUNA_MAX_PROPOSALS = 10


@dataclass(frozen=True)
class Figures:
    """The results of one backtest that a search ranks and reports (ratios, not money)."""

    bars: int
    trades: int
    return_percent: float
    sharpe: float | None
    sortino: float | None
    profit_factor: float | None
    max_drawdown_percent: float
    win_rate_percent: float

    @classmethod
    def of(cls, result: BacktestResult) -> Figures:
        p = result.performance
        return cls(
            bars=result.ticks,
            trades=p.total_trades,
            return_percent=float(p.return_percent),
            sharpe=_float(p.sharpe_ratio),
            sortino=_float(p.sortino_ratio),
            profit_factor=_float(p.profit_factor),
            max_drawdown_percent=float(p.max_drawdown_percent),
            win_rate_percent=float(p.win_rate_percent),
        )


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Metric:
    description: str
    #: Higher is better; None when undefined (Sharpe of a flat curve), which ranks last.
    score: Callable[[Figures], float | None]


METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        "sharpe": Metric("annualised Sharpe ratio", lambda f: f.sharpe),
        "sortino": Metric("annualised Sortino ratio", lambda f: f.sortino),
        "total_return": Metric("total return, %", lambda f: f.return_percent),
        "profit_factor": Metric("gross profit / gross loss", lambda f: f.profit_factor),
        "win_rate": Metric("winning closes, %", lambda f: f.win_rate_percent),
        "max_drawdown": Metric(
            "maximum drawdown, % (scored negated: smaller is better)",
            lambda f: -f.max_drawdown_percent,
        ),
    }
)


# -- windows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Bars [start, end) of the search period's timeline."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Fold:
    """A training window and the test window right after it."""

    train: Window
    test: Window


def holdout_split(bars: int, train_fraction: float) -> list[Fold]:
    """The first `train_fraction` of the bars to search on, the rest to test on."""
    _check_fraction(train_fraction)
    cut = round(bars * train_fraction)
    return [Fold(Window(0, cut), Window(cut, bars))]


def walk_forward_split(bars: int, folds: int, train_fraction: float) -> list[Fold]:
    """`folds` rolling train/test pairs whose test windows tile the period after the first train.

    Every training window has the same length, `train_fraction` of its fold; each one ends
    where its test window starts, so no fold is ever scored on bars it was tuned on.
    """
    _check_fraction(train_fraction)
    if folds < 1:
        raise OptionError("--folds", f"must be at least 1, not {folds}")
    train = round(bars * train_fraction / (train_fraction + folds * (1 - train_fraction)))
    tested = bars - train
    cuts = [train + tested * i // folds for i in range(folds + 1)]
    return [Fold(Window(a - train, a), Window(a, b)) for a, b in itertools.pairwise(cuts)]


def _check_fraction(train_fraction: float) -> None:
    if not 0 < train_fraction < 1:
        raise OptionError("--train-fraction", f"must be between 0 and 1, not {train_fraction}")


# -- the search space ----------------------------------------------------------------------


def parameter_values(name: str, spec: Parameter) -> list[int | float]:
    """Every value the grid tries: low, low + step, ... up to high (included when on a step)."""
    if spec.is_integer:
        step = int(spec.step or 1)
        return list(range(int(spec.low), int(spec.high) + 1, step))
    if spec.step is None:
        raise OptionError(
            "--method",
            f"{name} is a continuous parameter with no step, so a grid cannot cover it: fix it "
            f"with --param {name}=VALUE or search it with --method optuna",
        )
    low, stride = Decimal(str(spec.low)), Decimal(str(spec.step))
    count = int((Decimal(str(spec.high)) - low) / stride) + 1
    return [float(low + stride * i) for i in range(count)]


def fixed_params(strategy: type[Strategy], given: Mapping[str, object]) -> Params:
    """`--param` values checked against the strategy's declared parameters."""
    unknown = sorted(set(given) - set(strategy.parameters))
    if unknown:
        known = ", ".join(sorted(strategy.parameters)) or "none"
        raise OptionError(
            "--param", f"{strategy.name} has no parameter {', '.join(unknown)} (known: {known})"
        )
    try:
        return {name: strategy.parameters[name].coerce(name, v) for name, v in given.items()}
    except ValueError as exc:
        raise OptionError("--param", str(exc)) from None


def grid_size(space: Mapping[str, Parameter]) -> int:
    return math.prod(len(parameter_values(n, p)) for n, p in space.items())


def grid(space: Mapping[str, Parameter], fixed: Params) -> Iterator[Params]:
    """Every combination of the free parameters' steps, in declaration order, plus `fixed`."""
    free = {n: parameter_values(n, p) for n, p in space.items() if n not in fixed}
    for combination in itertools.product(*free.values()):
        yield {**fixed, **dict(zip(free, combination, strict=True))}


def buildable(strategy: type[Strategy], params: Params) -> bool:
    """Whether the strategy accepts this combination (e.g. a fast average shorter than the slow)."""
    try:
        strategy.from_params(params)
    except ValueError:
        return False
    return True


def largest_warmup(strategy: type[Strategy], fixed: Params) -> int:
    """Warm-up bars of the hungriest candidate, trying each free parameter's ends and default."""
    ends = {
        name: sorted({spec.low, _last_value(name, spec), spec.default})
        for name, spec in strategy.parameters.items()
        if name not in fixed
    }
    warmups = [
        strategy.from_params({**fixed, **dict(zip(ends, combo, strict=True))}).warmup_bars
        for combo in itertools.product(*ends.values())
        if buildable(strategy, {**fixed, **dict(zip(ends, combo, strict=True))})
    ]
    return max(warmups, default=strategy.from_params(fixed).warmup_bars)


def _last_value(name: str, spec: Parameter) -> int | float:
    """The highest value on the parameter's steps (continuous: its high)."""
    if spec.step is None and not spec.is_integer:
        return spec.high
    return parameter_values(name, spec)[-1]


# -- running backtests ---------------------------------------------------------------------


class Backtester:
    """One period of candles, loaded once, backtested with any parameters on any window of it."""

    def __init__(self, config: BacktestConfig) -> None:
        # Defaults only: a fixed value may be invalid with another parameter's default.
        self.prepared: PreparedBacktest = prepare(dataclasses.replace(config, params={}))
        self.strategy_class = type(self.prepared.strategy)

    @property
    def timeline(self) -> list[datetime]:
        return self.prepared.timeline

    def evaluate(self, params: Params, window: Window) -> Figures:
        """Scores the window's bars; the strategy warms up on the bars before it (if any)."""
        strategy = self.strategy_class.from_params(params)
        lead = min(window.start, strategy.warmup_bars)
        run = dataclasses.replace(
            self.prepared,
            strategy=strategy,
            timeline=self.timeline[window.start - lead : window.end],
        )
        return Figures.of(run.run())


_worker: Backtester | None = None


def _start_worker(config: BacktestConfig) -> None:
    global _worker
    _worker = Backtester(config)


def _evaluate_in_worker(job: tuple[Params, Window]) -> Figures:
    assert _worker is not None, "worker not initialised"
    return _worker.evaluate(*job)


def _key(params: Params, window: Window) -> tuple[Any, ...]:
    return (*sorted(params.items()), window)


class Evaluator:
    """Backtests candidates in `workers` processes (in this one for 1), each one only once.

    `progress(runs)` is called after every backtest.
    """

    def __init__(
        self,
        backtester: Backtester,
        workers: int,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.backtester = backtester
        self.progress = progress
        self.runs = 0
        self._done: dict[tuple[Any, ...], Figures] = {}
        self._pool = (
            ProcessPoolExecutor(
                max_workers=workers,
                # A fresh interpreter per worker: safe under Django and threads, unlike fork.
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(backtester.prepared.config,),
            )
            if workers > 1
            else None
        )

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def figures(self, jobs: Sequence[tuple[Params, Window]]) -> list[Figures]:
        """Figures of each (params, window), in order."""
        todo = list({_key(*job): job for job in jobs if _key(*job) not in self._done}.values())
        results: Iterator[Figures] = (
            self._pool.map(_evaluate_in_worker, todo)
            if self._pool is not None
            else (self.backtester.evaluate(*job) for job in todo)
        )
        for job, figures in zip(todo, results, strict=True):
            self._done[_key(*job)] = figures
            self.runs += 1
            if self.progress is not None:
                self.progress(self.runs)
        return [self._done[_key(*job)] for job in jobs]


# -- the search ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchSettings:
    metric: str = "sharpe"
    method: Method = "grid"
    #: Optuna: candidates to try per training window.
    trials: int = 50
    workers: int = 1
    split: Split = "holdout"
    train_fraction: float = 0.7
    #: Walk-forward: train/test pairs.
    folds: int = 3
    #: Hold-out: best in-sample candidates also run out of sample.
    top: int = 5
    #: Largest grid searched; a bigger one is refused rather than run for hours.
    max_grid: int = 2000


@dataclass(frozen=True)
class Candidate:
    params: Params
    train: Figures
    train_score: float | None
    #: None when it was not among those run out of sample.
    test: Figures | None = None
    test_score: float | None = None


@dataclass(frozen=True)
class FoldResult:
    fold: Fold
    train_period: tuple[datetime, datetime]
    test_period: tuple[datetime, datetime]
    #: Distinct candidates scored in sample.
    evaluated: int
    #: Best in-sample first, each with its out-of-sample run.
    best: list[Candidate]
    #: The strategy's defaults (with the fixed values), for comparison; None if it refuses them.
    baseline: Candidate | None


@dataclass(frozen=True)
class SearchReport:
    strategy: str
    settings: SearchSettings
    config: BacktestConfig
    period: tuple[datetime, datetime]
    bars: int
    fixed: Params
    #: Free parameters and the values or range searched.
    space: Mapping[str, str]
    #: Grid combinations the strategy refused (e.g. fast >= slow).
    rejected: int
    warmup_bars: int
    backtests: int
    folds: list[FoldResult]

    @property
    def out_of_sample_score(self) -> float | None:
        """Mean test score of each fold's best candidate, over the folds where it is defined."""
        return _mean(f.best[0].test_score for f in self.folds)

    @property
    def baseline_out_of_sample_score(self) -> float | None:
        return _mean(f.baseline.test_score for f in self.folds if f.baseline is not None)

    @property
    def out_of_sample_return_percent(self) -> float:
        """Each fold's best run on its test window, compounded."""
        return _compounded(f.best[0].test for f in self.folds)

    @property
    def baseline_out_of_sample_return_percent(self) -> float | None:
        if any(f.baseline is None for f in self.folds):
            return None
        return _compounded(f.baseline.test for f in self.folds if f.baseline is not None)

    def to_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            "strategy": self.strategy,
            "metric": self.settings.metric,
            "metric_description": METRICS[self.settings.metric].description,
            "method": self.settings.method,
            "split": self.settings.split,
            "train_fraction": self.settings.train_fraction,
            "chain": c.chain,
            "tokens": list(c.tokens),
            "bar": c.bar,
            "data": str(c.data_dir),
            "initial_balance_usd": str(c.initial_balance_usd),
            "fee_model": c.fee_model,
            "seed": c.seed,
            "period": [t.isoformat() for t in self.period],
            "bars": self.bars,
            "warmup_bars": self.warmup_bars,
            "fixed": self.fixed,
            "space": dict(self.space),
            "rejected": self.rejected,
            "backtests": self.backtests,
            "folds": [_fold_dict(f) for f in self.folds],
            "out_of_sample": {
                "score": self.out_of_sample_score,
                "return_percent": self.out_of_sample_return_percent,
                "baseline_score": self.baseline_out_of_sample_score,
                "baseline_return_percent": self.baseline_out_of_sample_return_percent,
            },
        }


def _mean(scores: Iterable[float | None]) -> float | None:
    defined = [s for s in scores if s is not None]
    return statistics.fmean(defined) if defined else None


def _compounded(runs: Iterable[Figures | None]) -> float:
    growth = math.prod(1 + r.return_percent / 100 for r in runs if r is not None)
    return (growth - 1) * 100


def _fold_dict(f: FoldResult) -> dict[str, Any]:
    return {
        "train": {
            "bars": len(f.fold.train),
            "from": f.train_period[0].isoformat(),
            "to": f.train_period[1].isoformat(),
        },
        "test": {
            "bars": len(f.fold.test),
            "from": f.test_period[0].isoformat(),
            "to": f.test_period[1].isoformat(),
        },
        "evaluated": f.evaluated,
        "best": [dataclasses.asdict(c) for c in f.best],
        "baseline": None if f.baseline is None else dataclasses.asdict(f.baseline),
    }


def search(
    config: BacktestConfig,
    settings: SearchSettings,
    progress: Callable[[int, int], None] | None = None,
) -> SearchReport:
    """Search `config.strategy`'s parameters, holding `config.params` fixed.

    `progress(done, planned)` follows the backtests (planned is an estimate: repeats are free).
    """
    if settings.metric not in METRICS:
        raise OptionError(
            "--metric", f"unknown metric {settings.metric!r}; use one of {', '.join(METRICS)}"
        )
    # Each plain number is checked before the data is read and the grid built, so a wrong one
    # is reported first, not after an error about something else.
    for option, value in (
        ("--trials", settings.trials),
        ("--workers", settings.workers),
        ("--max-grid", settings.max_grid),
        ("--folds", settings.folds),
    ):
        if value < 1:
            raise OptionError(option, f"must be at least 1, not {value}")
    _check_fraction(settings.train_fraction)
    backtester = Backtester(config)
    strategy = backtester.strategy_class
    fixed = fixed_params(strategy, config.params)
    free = {n: p for n, p in strategy.parameters.items() if n not in fixed}
    candidates, rejected = _grid_candidates(strategy, free, fixed, settings)
    warmup = largest_warmup(strategy, fixed)
    timeline = backtester.timeline
    folds = (
        holdout_split(len(timeline), settings.train_fraction)
        if settings.split == "holdout"
        else walk_forward_split(len(timeline), settings.folds, settings.train_fraction)
    )
    _check_windows(folds, timeline, warmup, strategy.name)
    metric = METRICS[settings.metric]
    top = settings.top if settings.split == "holdout" else 1
    defaults: Params = {**{n: p.default for n, p in free.items()}, **fixed}
    per_fold = len(candidates) if settings.method == "grid" else settings.trials
    planned = len(folds) * (per_fold + 2 * (top + 1))
    results = []

    def advance(done: int) -> None:
        if progress is not None:
            progress(done, planned)

    with Evaluator(backtester, settings.workers, advance) as evaluator:
        for fold in folds:
            if settings.method == "grid":
                scored = _scored(evaluator, metric, candidates, fold.train)
            else:
                scored = _optuna(evaluator, metric, strategy, free, fixed, fold.train, settings)
            best = sorted(scored, key=lambda c: _rank(c.train_score))[:top]
            baseline = (
                _scored(evaluator, metric, [defaults], fold.train)
                if buildable(strategy, defaults)
                else []
            )
            chosen = [*best, *baseline]
            tests = evaluator.figures([(c.params, fold.test) for c in chosen])
            tested = [
                dataclasses.replace(c, test=t, test_score=metric.score(t))
                for c, t in zip(chosen, tests, strict=True)
            ]
            results.append(
                FoldResult(
                    fold=fold,
                    train_period=_period(timeline, fold.train),
                    test_period=_period(timeline, fold.test),
                    evaluated=len(scored),
                    best=tested[: len(best)],
                    baseline=tested[-1] if baseline else None,
                )
            )
        backtests = evaluator.runs
    return SearchReport(
        strategy=strategy.name,
        settings=settings,
        config=config,
        period=(timeline[0], timeline[-1]),
        bars=len(timeline),
        fixed=fixed,
        space={n: _describe(n, p, settings.method) for n, p in free.items()},
        rejected=rejected,
        warmup_bars=warmup,
        backtests=backtests,
        folds=results,
    )


def _grid_candidates(
    strategy: type[Strategy],
    free: Mapping[str, Parameter],
    fixed: Params,
    settings: SearchSettings,
) -> tuple[list[Params], int]:
    """The grid's candidates the strategy accepts, and how many it refused (none for optuna)."""
    if settings.method != "grid":
        return [], 0
    size = grid_size(free)
    if size > settings.max_grid:
        counts = " x ".join(f"{len(parameter_values(n, p))} {n}" for n, p in free.items())
        raise OptionError(
            "--max-grid",
            f"the grid has {size:,} candidates ({counts}), more than the limit of "
            f"{settings.max_grid:,}: fix some with --param NAME=VALUE, raise --max-grid, "
            "or use --method optuna --trials N",
        )
    every = list(grid(free, fixed))
    accepted = [c for c in every if buildable(strategy, c)]
    if not accepted:
        raise OptionError("--param", f"{strategy.name} refuses every candidate of the grid")
    return accepted, len(every) - len(accepted)


def _rank(score: float | None) -> tuple[bool, float]:
    return (score is None, -(score or 0.0))


def _scored(
    evaluator: Evaluator, metric: Metric, candidates: Sequence[Params], window: Window
) -> list[Candidate]:
    figures = evaluator.figures([(c, window) for c in candidates])
    return [Candidate(c, f, metric.score(f)) for c, f in zip(candidates, figures, strict=True)]


def _optuna(
    evaluator: Evaluator,
    metric: Metric,
    strategy: type[Strategy],
    free: Mapping[str, Parameter],
    fixed: Params,
    window: Window,
    settings: SearchSettings,
) -> list[Candidate]:
    """TPE over the free parameters, OPTUNA_BATCH candidates at a time, told back in ask order.

    `settings.trials` counts the proposals the strategy accepts (refused ones are free, up to
    OPTUNA_MAX_PROPOSALS per trial). The batch size does not depend on the worker count, so a
    seed gives the same search on any machine; the constant liar keeps a batch's candidates apart.
    """
    import optuna  # heavy: only optuna searches pay for importing it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(
            seed=evaluator.backtester.prepared.config.seed, constant_liar=True
        ),
    )
    distributions: dict[str, optuna.distributions.BaseDistribution] = {
        n: _distribution(n, p) for n, p in free.items()
    }
    seen: dict[tuple[Any, ...], Candidate] = {}
    accepted = 0
    while accepted < settings.trials and len(study.trials) < settings.trials * OPTUNA_MAX_PROPOSALS:
        count = min(OPTUNA_BATCH, settings.trials - accepted)
        trials = [study.ask(distributions) for _ in range(count)]
        params = [{**fixed, **t.params} for t in trials]
        valid = [p for p in params if buildable(strategy, p)]
        accepted += len(valid)
        for candidate in _scored(evaluator, metric, valid, window):
            seen[_key(candidate.params, window)] = candidate
        for trial, p in zip(trials, params, strict=True):
            found = seen.get(_key(p, window))
            score = None if found is None else found.train_score
            # A refused combination or an undefined score is the worst outcome, not a failure:
            # TPE then steers away from it instead of proposing it again.
            study.tell(trial, -math.inf if score is None else score)
    if not seen:
        raise OptionError(
            "--param",
            f"{strategy.name} refused all {len(study.trials)} combinations Optuna proposed: "
            "hold parameters with --param so that more combinations are valid",
        )
    return list(seen.values())


def _distribution(
    name: str, spec: Parameter
) -> optuna.distributions.IntDistribution | optuna.distributions.FloatDistribution:
    import optuna

    if spec.is_integer:
        return optuna.distributions.IntDistribution(
            int(spec.low), int(_last_value(name, spec)), step=int(spec.step or 1)
        )
    return optuna.distributions.FloatDistribution(
        float(spec.low), float(_last_value(name, spec)), step=spec.step
    )


def _describe(name: str, spec: Parameter, method: Method) -> str:
    step = f" step {spec.step}" if spec.step is not None else ""
    if method == "grid":
        return f"{spec.low}..{_last_value(name, spec)}{step} ({len(parameter_values(name, spec))})"
    return f"{spec.low}..{_last_value(name, spec)}{step}"


def _period(timeline: Sequence[datetime], window: Window) -> tuple[datetime, datetime]:
    return timeline[window.start], timeline[window.end - 1]


def _check_windows(
    folds: Sequence[Fold], timeline: Sequence[datetime], warmup: int, name: str
) -> None:
    for number, fold in enumerate(folds, start=1):
        for role, window in (("training", fold.train), ("test", fold.test)):
            warming = max(0, warmup - window.start)
            if len(window) - warming >= MIN_SCORED_BARS:
                continue
            where = f"fold {number}'s " if len(folds) > 1 else "the "
            needs = f"{warming} to warm {name} up and " if warming else ""
            raise OptionError(
                "--from/--to",
                f"{where}{role} window has {len(window)} bars, too few: it needs {needs}"
                f"{MIN_SCORED_BARS} to score (the period has {len(timeline)} bars); lengthen "
                "the period, change --train-fraction, use fewer --folds or fix the parameters "
                "that set the warm-up with --param",
            )
