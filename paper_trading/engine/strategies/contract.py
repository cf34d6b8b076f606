"""Checks that a strategy keeps its interface's promises before it runs over a recording.

A backtest (and a replayed bot) computes a strategy's indicators once over the whole recording.
An indicator that reads later closes (a series shifted back, a normalisation over the whole
series, a centred window) would then let it trade on prices it could not have known, with
results no live bot can reproduce, and nothing in the run would show it. So the indicators are
also computed over shorter series cut at a few bars, and every value before a cut must be the
same either way: a value that changes when later closes are added looks ahead. The same goes
for `active_bars`. freqtrade needs a separate `lookahead-analysis` run for this; here every
backtest and replay checks it before the first tick.

`checked_decision` holds each `decide` to the same standard: an exception, or an answer the
engine cannot act on, stops the run with a message naming the strategy, the token and the bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import numpy as np

from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.engine.strategies.base import (
    Action,
    BoolArray,
    Decision,
    FloatArray,
    MarketView,
    Strategy,
)

#: Where the close series is cut for the look-ahead check, as fractions of its length (and the
#: last bar, which catches an indicator reading the very next close).
_CUTS = (0.25, 0.5, 0.75)
#: Flagged bars (spread over the series) that the active-bars check also cuts right after.
_FLAGGED_CUTS = 8
#: Float noise allowed between a value computed over the whole series and over a shorter one.
_RELATIVE, _ABSOLUTE = 1e-9, 1e-12


class StrategyContractError(ValueError):
    """A strategy broke a promise of the `Strategy` interface; the message says which."""


def indicator_arrays(strategy: Strategy, closes: FloatArray) -> Mapping[str, FloatArray]:
    """`strategy.indicators(closes)`, refusing arrays that do not line up with the closes."""
    arrays = strategy.indicators(closes)
    for name, values in arrays.items():
        if len(values) != len(closes):
            raise StrategyContractError(
                f"{strategy.name}.indicators() returned {len(values)} values of {name!r} for "
                f"{len(closes)} closes; each indicator needs one value per close"
            )
    return arrays


def checked_indicators(
    strategy: Strategy, closes: FloatArray
) -> tuple[Mapping[str, FloatArray], BoolArray | None]:
    """The indicators and active bars over a whole recording, checked not to look ahead."""
    arrays = indicator_arrays(strategy, closes)
    active = active_bars(strategy, arrays, len(closes))
    if not arrays:
        return arrays, active
    count = len(closes)
    cuts = {round(count * f) for f in _CUTS} | {count - 1}
    if active is not None:
        # Right after flagged bars too: a bar flagged because of a later one loses its flag when
        # the series ends just after it, and that shows nowhere else.
        flagged = np.flatnonzero(active)
        if len(flagged):
            sample = flagged[np.linspace(0, len(flagged) - 1, _FLAGGED_CUTS, dtype=np.intp)]
            cuts.update((sample + 1).tolist())
    for cut in sorted(cuts):
        if cut < 1:
            continue
        early = indicator_arrays(strategy, closes[:cut])
        for name, values in arrays.items():
            shorter = early.get(name)
            if shorter is None:
                raise StrategyContractError(
                    f"{strategy.name}.indicators() returned no {name!r} for the first {cut} "
                    "closes; it must return the same indicators for any series"
                )
            _same_before_cut(strategy, name, values[:cut], shorter, cut)
        if active is not None:
            flags = active_bars(strategy, early, cut)
            if flags is not None and not np.array_equal(flags, active[:cut]):
                bar = int(np.flatnonzero(flags != active[:cut])[0])
                raise StrategyContractError(
                    f"{strategy.name}.active_bars() flags bar {bar} differently once closes after "
                    f"bar {cut - 1} are known: it looks ahead, so a backtest or replay would "
                    "skip or run bars on prices it could not have known"
                )
    return arrays, active


def check_recording(strategy: Strategy, source: ReplaySource, symbols: Iterable[str]) -> None:
    """Check `strategy` over each symbol's recording before a run starts, so a broken strategy
    is refused with its reason instead of failing at the first tick."""
    for symbol in symbols:
        checked_indicators(strategy, source.recording(symbol)[2])


def checked_decision(strategy: Strategy, view: MarketView) -> Decision:
    """`strategy.decide(view)`, refusing an exception or an answer the engine cannot act on
    with a `StrategyContractError` that names the strategy, the token and the bar (a backtest
    stops on it with that message instead of a traceback deep in the engine)."""
    try:
        decision = strategy.decide(view)
    except Exception as exc:
        raise StrategyContractError(
            f"{strategy.name}.decide() raised {type(exc).__name__} {_where(view)}: {exc}"
        ) from exc
    problem = _decision_problem(decision)
    if problem:
        raise StrategyContractError(f"{strategy.name}.decide() {_where(view)} {problem}")
    return decision


def _where(view: MarketView) -> str:
    # Only for a message: formatting the time on every call would cost a backtest more.
    return f"for {view.symbol} at {view.now:%Y-%m-%d %H:%M} UTC"


def _decision_problem(decision: object) -> str:
    """What makes `decision` unusable ("" if nothing): the checks `Decision` documents."""
    if not isinstance(decision, Decision):
        return f"returned {type(decision).__name__}, not a Decision"
    if not isinstance(decision.action, Action):
        return f"returned action {decision.action!r}, not an Action (Action.BUY, SELL or HOLD)"
    for name in ("size_usd", "sell_fraction"):
        value = getattr(decision, name)
        if not (isinstance(value, Decimal) and value.is_finite()):
            return f"returned {name}={value!r}, not a finite Decimal"
    if decision.action is Action.SELL and decision.sell_fraction <= 0:
        # Above 1 sells the whole position (the analyzer caps it); at or below 0 means nothing.
        return f"returned a SELL of sell_fraction={decision.sell_fraction}, not in (0, 1]"
    return ""


def active_bars(
    strategy: Strategy, arrays: Mapping[str, FloatArray], count: int
) -> BoolArray | None:
    """`strategy.active_bars(arrays)`, refusing flags that do not line up with the closes."""
    active = strategy.active_bars(arrays)
    if active is None:
        return None
    if len(active) != count:
        raise StrategyContractError(
            f"{strategy.name}.active_bars() returned {len(active)} flags for {count} closes; "
            "it needs one per close"
        )
    return np.asarray(active, dtype=np.bool_)


def _same_before_cut(
    strategy: Strategy, name: str, whole: FloatArray, shorter: FloatArray, cut: int
) -> None:
    same = np.isclose(whole, shorter, rtol=_RELATIVE, atol=_ABSOLUTE, equal_nan=True)
    if same.all():
        return
    bar = int(np.flatnonzero(~same)[0])
    raise StrategyContractError(
        f"{strategy.name}.indicators() looks ahead: {name!r} at bar {bar} is {whole[bar]:.6g} "
        f"over the whole series but {shorter[bar]:.6g} over the first {cut} closes, so it reads "
        "later closes and a backtest or replay would trade on prices it could not have known (the "
        "value at bar i may use only closes[: i + 1])"
    )
