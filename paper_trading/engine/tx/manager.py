"""Sends a quoted swap as a paper transaction and follows it block by block until it ends.

Each block of the fee path either takes the transaction (its max fee covers the base fee and
its tip is competitive: on first-come-first-served chains any tip is), or it waits. A waiting
transaction is replaced with a bumped fee when stuck and dropped after the retry policy's cap or
deadline. The swap fills at the price of the block it lands in, through the DEX simulator, so a
price that moved past the minimum output while pending reverts it and burns gas as on chain.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from paper_trading.engine import money
from paper_trading.engine.dex.gas import GWEI_DECIMALS, FeesPaid
from paper_trading.engine.dex.quote import SwapFill, SwapQuote
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.tx.fee_path import FeePath
from paper_trading.engine.tx.gas_strategies import FeeBid, GasStrategy
from paper_trading.engine.tx.lifecycle import TxEvent, TxOutcome, TxState
from paper_trading.engine.tx.mev import SandwichOutcome, SandwichPolicy, assess_sandwich
from paper_trading.engine.tx.retry import RetryPolicy

#: The mid price of the traded token at a moment (the block a transaction lands in).
PriceAt = Callable[[datetime], Decimal]
#: An attacker pays gas for a front-run and a back-run, each about the victim's swap.
ATTACKER_SWAPS = 2


class TransactionManager:
    """Routes swaps through one gas strategy over one fee path; replay = another strategy."""

    def __init__(
        self,
        simulator: DexSimulator,
        path: FeePath,
        strategy: GasStrategy,
        retry: RetryPolicy | None = None,
        sandwich: SandwichPolicy | None = None,
    ) -> None:
        if path.chain.chain_id != simulator.chain.chain_id:
            raise ValueError(f"fee path is for {path.chain.name}, not {simulator.chain.name}")
        self.simulator = simulator
        self.path = path
        self.strategy = strategy
        self.retry = retry or RetryPolicy()
        self.sandwich = sandwich

    def send(
        self, quote: SwapQuote, now: datetime, price_at: PriceAt, needs_approval: bool
    ) -> TxOutcome:
        """Follow the swap decided at `now` to inclusion, revert or drop."""
        path, retry = self.path, self.retry
        decided = path.block_at(now)
        block = decided + 1
        bid = self.strategy.bid(path, block, 0)
        while bid is None:
            if block - decided >= retry.deadline_blocks:
                held = self._event(
                    TxState.DROPPED, 0, block, FeeBid(0, 0), "held past the deadline"
                )
                return self._outcome(decided, [held], None, 1)
            block += 1
            bid = self.strategy.bid(path, block, block - decided - 1)
        why = (
            f"{self.strategy.name} offers max fee {_gwei(bid.max_fee_wei)}, "
            f"tip {_gwei(bid.max_priority_fee_wei)}"
        )
        if block > decided + 1:
            why += f" after holding {block - decided - 1} blocks for a cheaper base fee"
        sent_at = max(now, path.time_of(block - 1))
        events = [self._event(TxState.SUBMITTED, 0, block, bid, why, sent_at)]
        first, since, attempt = block, block, 0
        while True:
            miss = self._miss(bid, block)
            if miss is None:
                event, fill, sandwich = self._land(
                    quote, price_at, needs_approval, bid, block, attempt
                )
                failures = attempt + (1 if fill.reverted else 0)
                return self._outcome(decided, [*events, event], fill, failures, sandwich)
            if events[-1].state is TxState.SUBMITTED:
                events.append(self._event(TxState.PENDING, attempt, block, bid, miss))
            stuck = block - since + 1
            drop: str | None = None
            if block - first + 1 >= retry.deadline_blocks:
                drop = f"not included within {retry.deadline_blocks} blocks: {miss}"
            elif stuck >= retry.stuck_after_blocks:
                new, drop = self._replacement(bid, block, decided, attempt, miss)
                if new is not None:
                    why = f"stuck {stuck} blocks ({miss}); replaced with a higher fee"
                    events.append(self._event(TxState.REPLACED, attempt, block, bid, why))
                    attempt, bid, since = attempt + 1, new, block + 1
                    why = (
                        f"replacement {attempt}: max fee {_gwei(bid.max_fee_wei)}, tip "
                        f"{_gwei(bid.max_priority_fee_wei)} (at least +{retry.bump_percent}%)"
                    )
                    sent = self._event(
                        TxState.SUBMITTED, attempt, since, bid, why, path.time_of(block)
                    )
                    events.append(sent)
            if drop is not None:
                events.append(self._event(TxState.DROPPED, attempt, block, bid, drop))
                return self._outcome(decided, events, None, attempt + 1)
            block += 1

    def _replacement(
        self, bid: FeeBid, block: int, decided: int, attempt: int, miss: str
    ) -> tuple[FeeBid | None, str | None]:
        """The bumped offer for the next block, or why the transaction is given up instead."""
        retry = self.retry
        if attempt >= retry.max_replacements:
            return None, f"still stuck after {attempt} replacements: {miss}"
        wanted = self.strategy.bid(self.path, block + 1, block - decided) or bid
        new = retry.bumped(bid, wanted)
        cap = retry.max_fee_cap_wei
        if cap is not None and new.max_fee_wei > cap:
            why = f"a replacement would offer max fee {_gwei(new.max_fee_wei)}, above the cap"
            return None, f"{why} {_gwei(cap)}: {miss}"
        return new, None

    def _land(
        self,
        quote: SwapQuote,
        price_at: PriceAt,
        needs_approval: bool,
        bid: FeeBid,
        block: int,
        attempt: int,
    ) -> tuple[TxEvent, SwapFill, SandwichOutcome | None]:
        """Fill the swap at the block's price and fees; the sandwich verdict if one is modelled."""
        path = self.path
        at = path.time_of(block)
        base = path.base_fee_wei(block)
        tip = 0 if path.chain.gas.ignores_priority_fee else bid.effective_tip_wei(base)
        fill = self.simulator.execute(quote, at, price_at(at), needs_approval, FeesPaid(base, tip))
        sandwich: SandwichOutcome | None = None
        if self.sandwich is not None:
            attacker_gas = money.mul(fill.gas.total_usd, Decimal(ATTACKER_SWAPS))
            sandwich, fill = assess_sandwich(self.sandwich, self.simulator, fill, at, attacker_gas)
        if fill.reverted:
            state, why = TxState.REVERTED, fill.revert_reason or ""
        else:
            state = TxState.INCLUDED
            why = f"paid {_gwei(base + tip)} per gas (base {_gwei(base)} + tip {_gwei(tip)})"
        if sandwich is not None:
            why += f"; {sandwich.reason}"
        return self._event(state, attempt, block, bid, why), fill, sandwich

    def _miss(self, bid: FeeBid, block: int) -> str | None:
        """Why `block` does not take the offer, or None when it does."""
        base = self.path.base_fee_wei(block)
        if bid.max_fee_wei < base:
            return f"max fee {_gwei(bid.max_fee_wei)} below base fee {_gwei(base)}"
        least = self.path.min_tip_wei(block)
        if bid.effective_tip_wei(base) < least:
            return (
                f"tip {_gwei(bid.effective_tip_wei(base))} below the block's least {_gwei(least)}"
            )
        return None

    def _event(
        self,
        state: TxState,
        attempt: int,
        block: int,
        bid: FeeBid,
        reason: str,
        at: datetime | None = None,
    ) -> TxEvent:
        return TxEvent(
            state=state,
            attempt=attempt,
            block=block,
            at=self.path.time_of(block) if at is None else at,
            max_fee_wei=bid.max_fee_wei,
            max_priority_fee_wei=bid.max_priority_fee_wei,
            base_fee_wei=self.path.base_fee_wei(block),
            reason=reason,
        )

    def _outcome(
        self,
        decided: int,
        events: list[TxEvent],
        fill: SwapFill | None,
        failures: int,
        sandwich: SandwichOutcome | None = None,
    ) -> TxOutcome:
        return TxOutcome(self.strategy.name, decided, tuple(events), fill, failures, sandwich)


def _gwei(wei: int) -> str:
    return f"{money.from_base_units(wei, GWEI_DECIMALS).normalize():f} gwei"
