"""What the mempool and the Uniswap factories tell the Fast Lane, decoded and chain-agnostic.

Each event converts to and from a JSON object (`to_json` / `event_from_json`): the recorded-events
source replays exactly what the WebSocket source decoded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from paper_trading.engine.dex.quote import Side


@dataclass(frozen=True)
class PendingSwap:
    """A pending transaction that is a Uniswap router swap between a token and the stablecoin."""

    tx_hash: str
    #: The chain token traded against the stablecoin (the tracked pool).
    symbol: str
    #: BUY: stablecoin in, token out (pushes the price up); SELL: the reverse.
    side: Side
    #: Input amount in the input token's units.
    amount_in: Decimal
    #: USD size when the input is the stablecoin; None when only a token quantity is known.
    size_usd: Decimal | None
    gas_price_gwei: Decimal
    #: "v2" or "v3" router call.
    router: str

    def to_json(self) -> dict[str, Any]:
        return _json("pending_swap", self)


@dataclass(frozen=True)
class PoolCreated:
    """A factory's PairCreated (V2) or PoolCreated (V3) log."""

    tx_hash: str
    pool_address: str
    token0: str
    token1: str
    #: Fee in pips (3000 = 0.3%); V2 pairs are always 3000.
    fee_pips: int
    kind: str
    #: USD value deposited at creation when known (a recording may carry it; the log does not).
    liquidity_usd: Decimal | None = None

    def to_json(self) -> dict[str, Any]:
        return _json("pool_created", self)


@dataclass(frozen=True)
class SwapLog:
    """A confirmed Swap log of a tracked pool: the swap is in a block now."""

    tx_hash: str
    pool_address: str
    #: Token of the tracked pool, or "" when the pool is not one the chain knows.
    symbol: str
    kind: str
    #: Signed pool balance changes (V3 convention: positive flows into the pool), base units.
    amount0: int
    amount1: int

    def to_json(self) -> dict[str, Any]:
        return _json("swap_log", self)


MempoolEvent = PendingSwap | PoolCreated | SwapLog

_TYPES: dict[str, type[PendingSwap] | type[PoolCreated] | type[SwapLog]] = {
    "pending_swap": PendingSwap,
    "pool_created": PoolCreated,
    "swap_log": SwapLog,
}


def _json(kind: str, event: MempoolEvent) -> dict[str, Any]:
    data: dict[str, Any] = {"type": kind}
    for key, value in asdict(event).items():
        data[key] = str(value) if isinstance(value, Decimal) else value
    return data


def event_from_json(data: dict[str, Any]) -> MempoolEvent:
    """The event a `to_json` object describes; ValueError names what is wrong."""
    fields = dict(data)
    kind = fields.pop("type", None)
    cls = _TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}; known: {', '.join(_TYPES)}")
    for key in ("amount_in", "size_usd", "gas_price_gwei", "liquidity_usd"):
        if fields.get(key) is not None:
            fields[key] = Decimal(str(fields[key]))
    if "side" in fields:
        fields["side"] = Side(fields["side"])
    try:
        return cls(**fields)
    except TypeError as exc:
        raise ValueError(f"{kind} event: {exc}") from None
