"""Checks that a strategy keeps its interface's promises before it runs over a recording.

A backtest (and a replayed bot) computes a strategy's indicators once over the whole recording.
An indicator that reads later closes (a series shifted back, a normalisation over the whole
series, a centred window) would then let it trade on prices it could not have known, with
results no live bot can reproduce, and nothing in the run would show it. So the indicators are
also computed over shorter series cut at a few bars, and every value before a cut must be the
same either way: a value that changes when later closes are added looks ahead. The same goes
for `active_bars`. freqtrade needs a separate `lookahead-analysis` run for this; here every
backtest and replay checks it before the first tick.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.engine.strategies.base import BoolArray, FloatArray, Strategy

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
