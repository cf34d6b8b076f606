"""What happened to a paper transaction: every state change as an immutable event.

submitted -> pending -> included | reverted | dropped | replaced; a replaced attempt is followed
by the submission of its replacement (attempt + 1), which goes through the same states.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from paper_trading.engine.dex.quote import SwapFill
from paper_trading.engine.tx.mev import SandwichOutcome


class TxState(StrEnum):
    SUBMITTED = "submitted"
    PENDING = "pending"
    INCLUDED = "included"
    REVERTED = "reverted"
    DROPPED = "dropped"
    REPLACED = "replaced"


@dataclass(frozen=True)
class TxEvent:
    """One state change of one attempt, with the fees that explain it."""

    state: TxState
    #: 0 for the first submission, +1 for each replacement (same nonce, higher fee).
    attempt: int
    block: int
    at: datetime
    max_fee_wei: int
    max_priority_fee_wei: int
    #: Base fee of `block`.
    base_fee_wei: int
    reason: str


@dataclass(frozen=True)
class TxOutcome:
    """The whole story of one swap sent through the transaction manager."""

    strategy: str
    #: The block being built when the trade was decided (a waiting strategy sends later).
    decided_block: int
    events: tuple[TxEvent, ...]
    #: None when the transaction was dropped: nothing landed and no gas was paid.
    fill: SwapFill | None
    #: Attempts that did not land (replaced or dropped) plus a revert: what a breaker counts.
    failures: int
    #: Sandwich verdict for a landed swap (None if none was evaluated).
    sandwich: SandwichOutcome | None = None

    @property
    def state(self) -> TxState:
        return self.events[-1].state

    @property
    def failed(self) -> bool:
        """The swap did not happen: dropped or reverted (the breaker's consecutive failure)."""
        return self.state in (TxState.DROPPED, TxState.REVERTED)

    @property
    def delay_blocks(self) -> int:
        """Blocks from the decision to the last event (inclusion, revert or drop)."""
        return self.events[-1].block - self.decided_block

    @property
    def gas_usd(self) -> Decimal:
        """Gas paid, approval included; 0 when dropped."""
        return self.fill.total_gas_usd if self.fill else Decimal(0)
