"""The blocks a paper transaction waits through: each one's base fee and the tips it paid.

A path numbers blocks from a genesis time in steps of the chain's block time. `ModelledFeePath`
follows the gas model's EIP-1559 base-fee path; `ScriptedFeePath` replays fees given by a test
or a recorded `eth_feeHistory`. Tips are reported as `eth_feeHistory` reports them: one reward
per block at each of `FEE_HISTORY_PERCENTILES`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from paper_trading.engine import money
from paper_trading.engine.chains import Chain
from paper_trading.engine.dex.gas import EPOCH, GWEI_DECIMALS, GasModel, blocks_since

#: Reward percentiles asked of eth_feeHistory: the slow, standard and fast tiers' tips.
FEE_HISTORY_PERCENTILES = (10, 50, 90)
#: Spread of the modelled tips around each block's level: 10th/50th/90th = 0.5x/1x/2x.
MODELLED_TIP_SPREAD = (Decimal("0.5"), Decimal(1), Decimal(2))
#: Log-normal sigma of a modelled block's tip level around the chain profile's tip.
MODELLED_TIP_SIGMA = 0.5

Rewards = tuple[int, ...]


class FeePath(ABC):
    """Base fee and tip percentiles per block number; block n starts at genesis + n blocks."""

    def __init__(self, chain: Chain, genesis: datetime) -> None:
        if genesis.tzinfo is None:
            raise ValueError("a fee path needs a timezone-aware genesis time")
        self.chain = chain
        self.genesis = genesis

    @abstractmethod
    def base_fee_wei(self, block: int) -> int:
        """The block's base fee, known from its parent before it is built."""

    @abstractmethod
    def rewards_wei(self, block: int) -> Rewards:
        """Tips paid in the block at each of FEE_HISTORY_PERCENTILES."""

    def min_tip_wei(self, block: int) -> int:
        """The least tip the block's builder takes: its 10th-percentile reward (0 on FCFS)."""
        if self.chain.gas.ignores_priority_fee:
            return 0
        return self.rewards_wei(block)[0]

    def block_at(self, now: datetime) -> int:
        """The block whose slot holds `now`; the next block is the first a tx sent now can join."""
        return blocks_since(self.genesis, now, self.chain.gas.block_time_seconds)

    def time_of(self, block: int) -> datetime:
        """When the block is produced: the start of its slot."""
        step = money.mul(self.chain.gas.block_time_seconds, Decimal(1_000_000))
        return self.genesis + timedelta(microseconds=int(money.mul(step, Decimal(block))))


class ModelledFeePath(FeePath):
    """The gas model's EIP-1559 base-fee path, with tips drawn around the profile's tip.

    Block numbers are the model's (block time steps since the Unix epoch), so the base fee of a
    block equals `GasModel.modelled_base_fee_wei` at its start; tips come from a generator
    seeded by (seed, chain, block), like the model's gas used.
    """

    def __init__(self, gas_model: GasModel) -> None:
        super().__init__(gas_model.chain, EPOCH)
        self.gas_model = gas_model

    def base_fee_wei(self, block: int) -> int:
        return self.gas_model.modelled_base_fee_wei(self.time_of(block))

    def rewards_wei(self, block: int) -> Rewards:
        profile = self.chain.gas
        if profile.ignores_priority_fee:
            return (0,) * len(FEE_HISTORY_PERCENTILES)
        rng = random.Random(f"{self.gas_model.seed}:{self.chain.chain_id}:{block}:tips")
        level = money.mul(
            profile.priority_fee_gwei, Decimal(rng.lognormvariate(0.0, MODELLED_TIP_SIGMA))
        )
        return tuple(
            money.to_base_units(money.mul(level, k), GWEI_DECIMALS) for k in MODELLED_TIP_SPREAD
        )


class ScriptedFeePath(FeePath):
    """Fees given block by block from block 0 at `genesis`, from a test or a recorded history.

    Past the end of a list its last entry repeats (and before block 0 its first), so one base fee
    or one rewards row scripts a flat path.
    """

    def __init__(
        self,
        chain: Chain,
        genesis: datetime,
        base_fees_wei: Sequence[int],
        rewards_wei: Sequence[Rewards] = ((0, 0, 0),),
    ) -> None:
        super().__init__(chain, genesis)
        if not base_fees_wei:
            raise ValueError("a scripted fee path needs at least one base fee")
        if not rewards_wei or any(len(r) != len(FEE_HISTORY_PERCENTILES) for r in rewards_wei):
            raise ValueError(f"each rewards row needs one tip per {FEE_HISTORY_PERCENTILES}")
        self.base_fees = tuple(base_fees_wei)
        self.rewards = tuple(tuple(r) for r in rewards_wei)

    def base_fee_wei(self, block: int) -> int:
        return self.base_fees[min(max(block, 0), len(self.base_fees) - 1)]

    def rewards_wei(self, block: int) -> Rewards:
        return self.rewards[min(max(block, 0), len(self.rewards) - 1)]
