"""How much a paper transaction offers per gas: legacy, EIP-1559 percentile tiers, or waiting.

A strategy looks at the fee path as a wallet looks at `eth_feeHistory` and returns a `FeeBid`
for the next block, or None to hold the transaction back for now.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Protocol

from paper_trading.engine import money
from paper_trading.engine.tx.fee_path import FEE_HISTORY_PERCENTILES, FeePath

#: Blocks of fee history a percentile tier averages its tip over.
FEE_HISTORY_BLOCKS = 20
#: Wallets' usual headroom: 2 x base fee survives six full blocks of +12.5% each.
BASE_FEE_HEADROOM = 2


@dataclass(frozen=True)
class FeeBid:
    """An EIP-1559 fee offer in wei per gas; a legacy gas price offers itself as both."""

    max_fee_wei: int
    max_priority_fee_wei: int

    def __post_init__(self) -> None:
        if self.max_priority_fee_wei < 0 or self.max_fee_wei < self.max_priority_fee_wei:
            raise ValueError(
                f"a fee bid needs 0 <= tip <= max fee, got tip {self.max_priority_fee_wei} "
                f"and max fee {self.max_fee_wei} wei"
            )

    def effective_tip_wei(self, base_fee_wei: int) -> int:
        """What the block's builder gets per gas: the tip, capped by what the max fee leaves."""
        return min(self.max_priority_fee_wei, self.max_fee_wei - base_fee_wei)


class GasStrategy(Protocol):
    """Prices a transaction for `block`, `waited` blocks after the trade was decided."""

    @property
    def name(self) -> str: ...

    def bid(self, path: FeePath, block: int, waited: int) -> FeeBid | None:
        """The offer for `block`, or None to hold the transaction back this block."""
        ...


@dataclass(frozen=True)
class Legacy:
    """A type-0 transaction: one gas price, a fixed multiple of the base fee, all of it paid.

    Without EIP-1559's refund of the unused max fee, everything above the base fee is tip.
    """

    multiple: Decimal = Decimal("1.25")
    name: str = "legacy"

    def bid(self, path: FeePath, block: int, waited: int) -> FeeBid:
        base = Decimal(path.base_fee_wei(block))
        price = int(money.mul(base, self.multiple).to_integral_value(ROUND_CEILING))
        return FeeBid(price, price)


@dataclass(frozen=True)
class PercentileTier:
    """EIP-1559 tier: tip = mean `percentile` reward of recent blocks; max fee = 2 x base + tip."""

    name: str
    percentile: int
    history_blocks: int = FEE_HISTORY_BLOCKS

    def __post_init__(self) -> None:
        if self.percentile not in FEE_HISTORY_PERCENTILES:
            raise ValueError(
                f"percentile must be one of {FEE_HISTORY_PERCENTILES}, got {self.percentile}"
            )
        if self.history_blocks < 1:
            raise ValueError("a percentile tier needs at least one block of fee history")

    def bid(self, path: FeePath, block: int, waited: int) -> FeeBid:
        column = FEE_HISTORY_PERCENTILES.index(self.percentile)
        history = range(block - self.history_blocks, block)
        tip = sum(path.rewards_wei(b)[column] for b in history) // self.history_blocks
        if path.chain.gas.ignores_priority_fee:
            tip = 0
        return FeeBid(BASE_FEE_HEADROOM * path.base_fee_wei(block) + tip, tip)


SLOW = PercentileTier("slow", 10)
STANDARD = PercentileTier("standard", 50)
FAST = PercentileTier("fast", 90)


@dataclass(frozen=True)
class WaitForCheaper:
    """Hold until the base fee drops below `threshold_wei` or `deadline_blocks` pass, then bid."""

    threshold_wei: int
    deadline_blocks: int
    then: GasStrategy = STANDARD
    name: str = "wait_for_cheaper"

    def bid(self, path: FeePath, block: int, waited: int) -> FeeBid | None:
        if path.base_fee_wei(block) >= self.threshold_wei and waited < self.deadline_blocks:
            return None
        return self.then.bid(path, block, waited)


#: wait_for_cheaper as accounts and `gas_report` use it: hold a swap for a base fee this much
#: below the next block's at the decision, for at most this many blocks, then bid standard.
WAIT_DISCOUNT_PERCENT = 10
WAIT_DEADLINE_BLOCKS = 25


def wait_for_cheaper_at(
    path: FeePath,
    block: int,
    discount_percent: int = WAIT_DISCOUNT_PERCENT,
    deadline_blocks: int = WAIT_DEADLINE_BLOCKS,
) -> WaitForCheaper:
    """wait_for_cheaper for a swap decided while `block` is being built."""
    threshold = path.base_fee_wei(block + 1) * (100 - discount_percent) // 100
    return WaitForCheaper(threshold, deadline_blocks)


def gas_strategy(name: str) -> GasStrategy:
    """A strategy by the name an account selects; `wait_for_cheaper` needs its own settings."""
    strategies: dict[str, GasStrategy] = {s.name: s for s in (Legacy(), SLOW, STANDARD, FAST)}
    try:
        return strategies[name]
    except KeyError:
        raise ValueError(
            f"unknown gas strategy {name!r}; known: {', '.join(strategies)} "
            "(build WaitForCheaper with a threshold and deadline)"
        ) from None
