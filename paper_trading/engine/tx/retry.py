"""When a stuck transaction is re-sent with a higher fee, and when it is given up.

A node replaces a pending transaction (same nonce) only if both its tip and its max fee rise by
at least its price bump: geth's default `txpool.pricebump` is 10%.
"""

from __future__ import annotations

from dataclasses import dataclass

from paper_trading.engine.tx.gas_strategies import FeeBid

#: geth's txpool.pricebump: the least rise, in percent, a replacement must offer.
NODE_MIN_BUMP_PERCENT = 10


@dataclass(frozen=True)
class RetryPolicy:
    """Replace after `stuck_after_blocks` pending, at most `max_replacements` times, under a cap.

    The transaction is dropped when it is stuck with no replacement left, when a replacement
    would offer more than `max_fee_cap_wei`, or when `deadline_blocks` have passed since it was
    first sent.
    """

    stuck_after_blocks: int = 3
    bump_percent: int = NODE_MIN_BUMP_PERCENT
    max_replacements: int = 3
    max_fee_cap_wei: int | None = None
    deadline_blocks: int = 50

    def __post_init__(self) -> None:
        if self.bump_percent < NODE_MIN_BUMP_PERCENT:
            raise ValueError(
                f"a node rejects replacements bumped by less than {NODE_MIN_BUMP_PERCENT}%, "
                f"got {self.bump_percent}%"
            )
        if self.stuck_after_blocks < 1 or self.deadline_blocks < 1 or self.max_replacements < 0:
            raise ValueError("retry needs positive block counts and no negative replacements")

    def bumped(self, old: FeeBid, wanted: FeeBid) -> FeeBid:
        """The replacement offer: what the strategy wants now, but at least the node's bump."""
        return FeeBid(
            max(wanted.max_fee_wei, _raise(old.max_fee_wei, self.bump_percent)),
            max(wanted.max_priority_fee_wei, _raise(old.max_priority_fee_wei, self.bump_percent)),
        )


def _raise(wei: int, percent: int) -> int:
    """`wei` raised by `percent`, rounded up so the node's threshold is always met."""
    return -(-wei * (100 + percent) // 100)
