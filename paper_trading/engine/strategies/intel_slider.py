"""The Intel slider: one knob from 1 (cautious) to 10 (aggressive) over a trend follower.

Every level reads the same indicators; the level only changes how strong and how calm a move
must be before acting, and how much to put on it. That keeps levels comparable: on the same
market a higher level trades at least as often and at least as large as a lower one.

`decide` is a pure function of the `MarketView` over a fixed-length window of history, so a
live session, a replay and a backtest that see the same prices make the same decisions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from paper_trading.engine import money
from paper_trading.engine.strategies import indicators
from paper_trading.engine.strategies.base import (
    Action,
    Decision,
    MarketView,
    Parameter,
    PositionView,
    Strategy,
)
from paper_trading.engine.strategies.wording import number as _num
from paper_trading.engine.strategies.wording import price as _price
from paper_trading.engine.strategies.wording import usd as _usd

MIN_LEVEL = 1
MAX_LEVEL = 10

SHORT_PERIOD = 12
LONG_PERIOD = 26
MOMENTUM_PERIOD = 12
#: Short look-back that tells a fading rally from one still rising.
FADE_PERIOD = 3
VOLATILITY_PERIOD = 26
RSI_PERIOD = 14
#: Above this RSI a held position whose short momentum turns down is trimmed (every level).
OVERBOUGHT_RSI = 80.0
#: Bars of history every indicator is computed over: enough for SMA(26), a 26-return
#: volatility and a settled Wilder RSI(14). Fixed so results don't depend on how much history
#: the caller happens to pass.
WINDOW = 40

_TREND_WEIGHT = 0.6
_MOMENTUM_WEIGHT = 0.4
#: Keeps a perfectly smooth series (zero volatility) from dividing by zero.
_NOISE_FLOOR = 1e-6
_FULL = Decimal(1)
_PARTIAL = Decimal("0.5")


@dataclass(frozen=True)
class IntelProfile:
    """What one slider level means, in numbers a trader can check decisions against."""

    level: int
    label: str
    #: Size of one entry as a percent of portfolio value (before the config's position cap).
    position_size_percent: Decimal
    #: Realized volatility, in percent per hour, above which buy confidence is scaled down.
    volatility_tolerance_percent: float
    #: Confidence (0-100) needed to buy or to sell a whole position on a reversal.
    min_confidence: Decimal
    #: Trade frequency: combined signal strength (0-1) below which the level ignores a move.
    min_signal_strength: float
    #: No buying at or above this RSI: cautious levels refuse to chase stretched moves sooner.
    max_entry_rsi: float


# level, label, size %, volatility tolerance %/hour, min confidence, min signal, max entry RSI
_TABLE: tuple[tuple[int, str, str, float, int, float, float], ...] = (
    (1, "Cautious", "2", 1.0, 80, 0.60, 75.0),
    (2, "Cautious", "3", 1.5, 75, 0.55, 77.0),
    (3, "Cautious", "5", 2.0, 70, 0.50, 79.0),
    (4, "Balanced", "7", 2.5, 65, 0.45, 81.0),
    (5, "Balanced", "10", 3.0, 60, 0.40, 83.0),
    (6, "Balanced", "13", 3.5, 55, 0.35, 85.0),
    (7, "Aggressive", "16", 4.0, 50, 0.30, 87.0),
    (8, "Aggressive", "20", 4.5, 45, 0.25, 89.0),
    (9, "Aggressive", "25", 5.0, 40, 0.20, 91.0),
    (10, "Maximum", "30", 5.5, 35, 0.15, 93.0),
)

PROFILES: Mapping[int, IntelProfile] = MappingProxyType(
    {
        level: IntelProfile(
            level=level,
            label=label,
            position_size_percent=Decimal(size),
            volatility_tolerance_percent=tolerance,
            min_confidence=Decimal(confidence),
            min_signal_strength=strength,
            max_entry_rsi=max_rsi,
        )
        for level, label, size, tolerance, confidence, strength, max_rsi in _TABLE
    }
)


def profile_for(level: int) -> IntelProfile:
    """The profile of a slider level; rejects levels the UI could never produce."""
    if level not in PROFILES:
        raise ValueError(f"intel level must be between {MIN_LEVEL} and {MAX_LEVEL}, got {level}")
    return PROFILES[level]


@dataclass(frozen=True)
class _Reading:
    """The indicator values of one window and the scores derived from them."""

    sma_short: float
    sma_long: float
    gap_percent: float
    momentum_percent: float
    fade_percent: float
    volatility_percent: float
    #: The level's tolerance converted to this series' bar length.
    tolerance_percent: float
    rsi: float
    trend_score: float
    momentum_score: float
    #: -1 (bearish) .. +1 (bullish), rounded to what the reasoning shows so gates match the text.
    signal: float
    #: 1 when trend and momentum agree, 0.5 when they pull apart.
    agreement: float
    #: 1 within the volatility tolerance, tolerance/volatility above it.
    calm: float


def _known(value: float | None) -> float:
    if value is None:  # WINDOW covers every period, so this would be a bug in this module
        raise RuntimeError("indicator window is shorter than an indicator period")
    return value


def _read(window: Sequence[Decimal], bar_seconds: int, profile: IntelProfile) -> _Reading:
    sma_short = _known(indicators.sma(window, SHORT_PERIOD))
    sma_long = _known(indicators.sma(window, LONG_PERIOD))
    momentum = _known(indicators.rate_of_change(window, MOMENTUM_PERIOD))
    volatility = _known(indicators.volatility(window, VOLATILITY_PERIOD))
    noise = max(volatility, _NOISE_FLOOR)
    gap = (sma_short / sma_long - 1.0) * 100.0
    # Scores are z-like: a move counts as strong when it is large compared with the noise, so
    # the same thresholds work for a stablecoin pair and for a memecoin.
    trend_score = math.tanh(gap / (2.0 * noise))
    momentum_score = math.tanh(momentum / (noise * math.sqrt(MOMENTUM_PERIOD)))
    tolerance = profile.volatility_tolerance_percent * math.sqrt(max(bar_seconds, 1) / 3600)
    return _Reading(
        sma_short=sma_short,
        sma_long=sma_long,
        gap_percent=gap,
        momentum_percent=momentum,
        fade_percent=_known(indicators.rate_of_change(window, FADE_PERIOD)),
        volatility_percent=volatility,
        tolerance_percent=tolerance,
        rsi=_known(indicators.rsi(window, RSI_PERIOD)),
        trend_score=trend_score,
        momentum_score=momentum_score,
        signal=round(_TREND_WEIGHT * trend_score + _MOMENTUM_WEIGHT * momentum_score, 2),
        agreement=0.5 if trend_score * momentum_score < 0 else 1.0,
        calm=min(1.0, tolerance / noise),
    )


def _score(value: float) -> Decimal:
    """A 0-100 score at the one decimal the reasoning prints, so text and gates agree."""
    return money.ratio(Decimal(f"{min(max(value, 0.0), 100.0):.1f}"))


class IntelSliderEngine(Strategy):
    """The built-in strategy: trend plus momentum, sized and gated by the slider level."""

    name = "intel_slider"
    warmup_bars = WINDOW
    parameters = MappingProxyType(
        {"level": Parameter(5, MIN_LEVEL, MAX_LEVEL, description="The Intel slider, 1-10")}
    )

    def __init__(self, level: int) -> None:
        self.profile = profile_for(level)
        self.level = level

    def decide(self, view: MarketView) -> Decision:
        if len(view.history) < self.warmup_bars:
            return self._warming_up(view)
        profile = self.profile
        reading = _read(view.history[-WINDOW:], view.bar_seconds, profile)
        position = view.position if view.position and view.position.quantity > 0 else None
        held_usd = money.usd(money.mul(position.quantity, view.price)) if position else money.ZERO
        cap_usd = money.usd(
            money.div(
                money.mul(view.portfolio_value_usd, view.config.max_position_size_percent),
                money.HUNDRED,
            )
        )
        required = max(profile.min_confidence, view.config.confidence_threshold)

        strength = abs(reading.signal)
        buy_confidence = _score(100 * max(reading.signal, 0.0) * reading.agreement * reading.calm)
        # Exits are not discounted for volatility: a choppy market is a reason to leave sooner.
        sell_confidence = _score(100 * max(-reading.signal, 0.0) * reading.agreement)
        confidence = buy_confidence if reading.signal >= 0 else sell_confidence
        risk = _score(
            100
            * reading.volatility_percent
            / (reading.volatility_percent + reading.tolerance_percent)
        )
        opportunity = _score(100 * max(reading.signal, 0.0) * reading.agreement)

        action = Action.HOLD
        size = money.ZERO
        fraction = money.ZERO
        if position and reading.signal <= -profile.min_signal_strength:
            action = Action.SELL
            fraction, verdict = self._consider_sell(reading, position, sell_confidence, required)
        elif position and reading.rsi >= OVERBOUGHT_RSI and reading.fade_percent < 0:
            action = Action.SELL
            fraction = _PARTIAL
            verdict = (
                f"RSI {reading.rsi:.0f} is overbought and momentum is fading "
                f"({reading.fade_percent:+.2f}% over {FADE_PERIOD} bars): SELL 50% to lock in part "
                f"of the {position.unrealized_pnl_percent:+.2f}%."
            )
        elif reading.signal >= profile.min_signal_strength:
            action, size, verdict = self._consider_buy(
                view, reading, buy_confidence, required, held_usd, cap_usd
            )
        elif reading.signal <= -profile.min_signal_strength:
            verdict = (
                f"Signal {reading.signal:+.2f} is bearish and there is no {view.symbol} to sell: "
                f"HOLD."
            )
        else:
            verdict = (
                f"Signal {reading.signal:+.2f} is weaker than the "
                f"±{profile.min_signal_strength:.2f} level {profile.level} acts on: HOLD."
            )

        sentences = [self._describe_market(view, reading), self._describe_risk(reading)]
        if position:
            sentences.append(self._describe_position(view, position, held_usd))
        sentences.append(verdict)
        return Decision(
            action=action,
            symbol=view.symbol,
            size_usd=size,
            sell_fraction=fraction,
            confidence=confidence,
            risk_score=risk,
            opportunity_score=opportunity,
            reasoning=" ".join(sentences),
            signals={
                "level": profile.level,
                "profile": profile.label,
                "price": float(view.price),
                "sma_short": reading.sma_short,
                "sma_long": reading.sma_long,
                "trend_gap_percent": reading.gap_percent,
                "momentum_percent": reading.momentum_percent,
                "fade_percent": reading.fade_percent,
                "volatility_percent": reading.volatility_percent,
                "volatility_tolerance_percent": reading.tolerance_percent,
                "rsi": reading.rsi,
                "trend_score": reading.trend_score,
                "momentum_score": reading.momentum_score,
                "signal": reading.signal,
                "signal_strength": strength,
                "agreement": reading.agreement,
                "calm": reading.calm,
                "required_confidence": float(required),
            },
        )

    def _consider_sell(
        self,
        reading: _Reading,
        position: PositionView,
        confidence: Decimal,
        required: Decimal,
    ) -> tuple[Decimal, str]:
        """Size the exit on a bearish reading: all of it when sure or already losing."""
        turned = f"Signal {reading.signal:+.2f} turned bearish"
        if confidence >= required:
            return _FULL, (
                f"{turned} with confidence {confidence:.1f} >= {_num(required)} required at "
                f"level {self.level}: SELL 100% of the position."
            )
        if position.unrealized_pnl_percent < 0:
            return _FULL, (
                f"{turned} and the position is losing ({position.unrealized_pnl_percent:+.2f}%): "
                f"SELL 100% of the position even though confidence {confidence:.1f} < "
                f"{_num(required)}."
            )
        return _PARTIAL, (
            f"{turned} but confidence {confidence:.1f} < {_num(required)} required at level "
            f"{self.level}: SELL 50% and keep the rest."
        )

    def _consider_buy(
        self,
        view: MarketView,
        reading: _Reading,
        confidence: Decimal,
        required: Decimal,
        held_usd: Decimal,
        cap_usd: Decimal,
    ) -> tuple[Action, Decimal, str]:
        """Turn a bullish reading into a BUY, or say which limit stops it."""
        profile = self.profile
        cap_percent = _num(view.config.max_position_size_percent)
        if reading.rsi >= profile.max_entry_rsi:
            return (
                Action.HOLD,
                money.ZERO,
                f"Signal {reading.signal:+.2f} is bullish but RSI {reading.rsi:.0f} is at or above "
                f"level {profile.level}'s entry ceiling of {profile.max_entry_rsi:.0f}: "
                f"HOLD rather than chase.",
            )
        if confidence < required:
            return (
                Action.HOLD,
                money.ZERO,
                f"Signal {reading.signal:+.2f} is bullish but confidence {confidence:.1f} < "
                f"{_num(required)} required at level {profile.level}: HOLD.",
            )
        if held_usd >= cap_usd:
            return (
                Action.HOLD,
                money.ZERO,
                f"Signal {reading.signal:+.2f} is bullish but the position is already at or above "
                f"the {cap_percent}% position cap ({_usd(cap_usd)}): HOLD instead of adding.",
            )
        size, limit = view.buy_budget(
            profile.position_size_percent,
            f"level {profile.level}'s {_num(profile.position_size_percent)}% size",
        )
        if size <= 0 or size < view.config.min_trade_usd:
            return (
                Action.HOLD,
                money.ZERO,
                f"Signal {reading.signal:+.2f} is bullish but {limit} allows only {_usd(size)}, "
                f"below the {_usd(view.config.min_trade_usd)} minimum trade: HOLD.",
            )
        share = money.div(money.mul(size, money.HUNDRED), view.portfolio_value_usd)
        return (
            Action.BUY,
            size,
            f"Signal {reading.signal:+.2f} (needs +{profile.min_signal_strength:.2f}), confidence "
            f"{confidence:.1f} >= {_num(required)} required at level {profile.level}: "
            f"BUY {_usd(size)} ({share:.1f}% of portfolio, limited by {limit}).",
        )

    def _warming_up(self, view: MarketView) -> Decision:
        return Decision(
            action=Action.HOLD,
            symbol=view.symbol,
            size_usd=money.ZERO,
            sell_fraction=money.ZERO,
            confidence=money.ratio(0),
            risk_score=money.ratio(0),
            opportunity_score=money.ratio(0),
            reasoning=(
                f"Only {len(view.history)} of {self.warmup_bars} bars of history; waiting before "
                f"judging {view.symbol}. Level {self.level} needs SMA({LONG_PERIOD}), "
                f"RSI({RSI_PERIOD}) and {VOLATILITY_PERIOD}-bar volatility over a full window: "
                f"HOLD."
            ),
            signals={
                "level": self.level,
                "profile": self.profile.label,
                "bars": len(view.history),
                "warmup_bars": self.warmup_bars,
            },
        )

    def _describe_market(self, view: MarketView, reading: _Reading) -> str:
        if reading.gap_percent > 0:
            trend = f"up, SMA({SHORT_PERIOD}) {_price(reading.sma_short)} is "
            trend += f"{reading.gap_percent:.2f}% above"
        elif reading.gap_percent < 0:
            trend = f"down, SMA({SHORT_PERIOD}) {_price(reading.sma_short)} is "
            trend += f"{-reading.gap_percent:.2f}% below"
        else:
            trend = f"flat, SMA({SHORT_PERIOD}) {_price(reading.sma_short)} is level with"
        return (
            f"{view.symbol} at {_price(float(view.price))}: trend {trend} "
            f"SMA({LONG_PERIOD}) {_price(reading.sma_long)}; momentum "
            f"{reading.momentum_percent:+.2f}% over {MOMENTUM_PERIOD} bars."
        )

    def _describe_risk(self, reading: _Reading) -> str:
        text = f"Volatility {reading.volatility_percent:.2f}%/bar is "
        if reading.calm >= 1:
            text += f"within level {self.level}'s tolerance ({reading.tolerance_percent:.2f}%/bar)"
        else:
            text += (
                f"above level {self.level}'s tolerance ({reading.tolerance_percent:.2f}%/bar), "
                f"which scales buy confidence by {reading.calm:.2f}"
            )
        return f"{text}; RSI({RSI_PERIOD}) {reading.rsi:.0f}."

    def _describe_position(
        self, view: MarketView, position: PositionView, held_usd: Decimal
    ) -> str:
        share = (
            money.div(money.mul(held_usd, money.HUNDRED), view.portfolio_value_usd)
            if view.portfolio_value_usd > 0
            else money.ZERO
        )
        return (
            f"Holding {view.symbol} worth {_usd(held_usd)} ({share:.1f}% of portfolio) at "
            f"{position.unrealized_pnl_percent:+.2f}% unrealized."
        )
