"""What a transaction costs in gas on each chain: EIP-1559 base fee, tip and L1 data fee.

The modelled base fee is stateless: for any moment it replays the EIP-1559 update rule over the
64 blocks before it from the chain profile's base fee, drawing each block's gas used from a
generator seeded by (seed, chain, block). A live run, a replay and a restarted process therefore
agree on every figure, and no state has to be stored. Live figures from an RPC node replace the
model through `LiveGasFigures`, either fixed (`overrides`) or read on every bill from a provider
(`live`, e.g. `JsonRpcGasOracle.figures`); a provider that cannot reach its node makes the bill
fall back to the model, marked source "default", instead of failing the trade.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from math import floor

from paper_trading.engine import money
from paper_trading.engine.chains import Chain
from paper_trading.engine.dex.quote import GasCost

GWEI_DECIMALS = 9
NATIVE_DECIMALS = 18
#: How many blocks of the EIP-1559 rule lead up to a modelled base fee.
HISTORY_BLOCKS = 64
#: Blocks whose modelled base fee a GasModel remembers (a few hundred kB at most).
_BASE_FEE_CACHE_BLOCKS = 4096

# Fjord L1 data fee constants (OP-stack GasPriceOracle).
FJORD_MIN_SIZE_SCALED = 100 * 1_000_000
FJORD_INTERCEPT = -42_585_600
FJORD_FASTLZ_COEF = 836_500
FJORD_SCALE = 1_000_000_000_000
#: A signed approve() compresses to about this many bytes, under Fjord's 100-byte floor.
APPROVE_TX_FASTLZ_SIZE = 90

#: The model's block 0 starts at the Unix epoch.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

log = logging.getLogger(__name__)


class GasFiguresUnavailableError(Exception):
    """A live gas provider could not produce figures; the model stands in (rpc.RpcError)."""


@dataclass(frozen=True)
class LiveGasFigures:
    """Fee figures read from a node, replacing the model; `source` becomes "rpc".

    `l1_fee_native` is GasPriceOracle.getL1Fee for a swap-sized transaction; None keeps the
    modelled L1 data fee.
    """

    base_fee_gwei: Decimal
    priority_fee_gwei: Decimal
    l1_fee_native: Decimal | None = None


#: Called on every bill: live figures, or None for the model; may raise GasFiguresUnavailableError.
LiveGasProvider = Callable[[], LiveGasFigures | None]


@dataclass(frozen=True)
class FeesPaid:
    """Per-gas fees a landed transaction paid: its block's base fee and its effective tip.

    The transaction manager knows them from the block it simulated inclusion in, so the bill
    uses them instead of the model's figures for the moment.
    """

    base_fee_wei: int
    tip_wei: int


def next_base_fee(base_fee_wei: int, gas_used: int, gas_limit: int) -> int:
    """EIP-1559: the next block's base fee, moving at most 1/8 (12.5%) towards demand."""
    target = gas_limit // 2
    if gas_used > target:
        return base_fee_wei + max(1, base_fee_wei * (gas_used - target) // target // 8)
    return base_fee_wei - base_fee_wei * (target - gas_used) // target // 8


def block_gas_used(seed: int, chain_id: int, number: int, gas_limit: int) -> int:
    """A modelled block's gas used, uniform over [0, gas_limit] and the same on every run.

    A keyed hash of the block rather than a seeded generator: a bill replays 64 blocks, and
    seeding a Mersenne Twister per block cost more than the rest of a backtest's swap.
    """
    digest = hashlib.blake2b(f"{seed}:{chain_id}:{number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (gas_limit + 1)


def blocks_since(genesis: datetime, now: datetime, block_time_seconds: Decimal) -> int:
    """Whole block times from `genesis` to `now`: the number of the block whose slot holds it."""
    if now.tzinfo is None:
        raise ValueError("gas model needs a timezone-aware time")
    micros = (now - genesis) // _MICROSECOND
    return floor(money.div(Decimal(micros), block_time_seconds * 1_000_000))


def fjord_l1_fee_wei(
    fastlz_size: int,
    l1_base_fee_wei: int,
    blob_base_fee_wei: int,
    base_fee_scalar: int,
    blob_base_fee_scalar: int,
) -> int:
    """OP-stack (Fjord) L1 data fee: what the L2 charges to post the transaction to Ethereum."""
    size_scaled = max(FJORD_MIN_SIZE_SCALED, FJORD_INTERCEPT + FJORD_FASTLZ_COEF * fastlz_size)
    fee_scaled = base_fee_scalar * l1_base_fee_wei * 16 + blob_base_fee_scalar * blob_base_fee_wei
    return size_scaled * fee_scaled // FJORD_SCALE


def _wei(gwei: Decimal) -> int:
    return money.to_base_units(gwei, GWEI_DECIMALS)


class GasModel:
    """Gas costs for one chain, modelled from its profile or taken from live figures.

    `overrides` fixes the live figures; `live` is asked for them on every bill. Without either
    the model is stateless and deterministic.
    """

    def __init__(
        self,
        chain: Chain,
        seed: int = 0,
        overrides: LiveGasFigures | None = None,
        live: LiveGasProvider | None = None,
    ) -> None:
        if overrides is not None and live is not None:
            raise ValueError("give the gas model fixed overrides or a live provider, not both")
        self.chain = chain
        self.seed = seed
        self.overrides = overrides
        self.live = live
        #: The last replayed window of blocks' gas used (first block, draws): consecutive
        #: blocks' bills share 63 of their 64 blocks.
        self._last_window: tuple[int, list[int]] = (0, [])
        #: Each modelled block's base fee: a swap is quoted and then billed in the same block.
        self._base_fee: dict[int, int] = {}
        profile = chain.gas
        self._floor_wei = _wei(profile.min_base_fee_gwei)
        self._start_wei = max(self._floor_wei, _wei(profile.base_fee_gwei))
        self._tip_wei = _wei(profile.priority_fee_gwei)
        self._last_block: tuple[datetime, int] = (EPOCH, 0)
        #: The last modelled bill and what it was for (GasCost is immutable, so it is shared).
        self._last_bill: tuple[object, GasCost] | None = None
        #: `block_gas_used` for this seed and chain: the hash state of "seed:chain:" is copied
        #: and the block number added, the same digest as hashing the whole text for less.
        self._gas_used_prefix = hashlib.blake2b(f"{seed}:{chain.chain_id}:".encode(), digest_size=8)
        self._gas_used_modulus = profile.block_gas_limit + 1

    def live_figures(self) -> LiveGasFigures | None:
        """Figures to bill with instead of the model, or None when the model applies."""
        if self.overrides is not None:
            return self.overrides
        if self.live is None:
            return None
        try:
            return self.live()
        except GasFiguresUnavailableError as exc:
            log.warning(
                "live gas figures unavailable on %s, using the model: %s", self.chain.name, exc
            )
            return None

    def block_number(self, now: datetime) -> int:
        """Model block height: whole block times since the epoch (the last one remembered: a
        swap asks it for its quote, its fill and their bills at one moment)."""
        last_now, last_block = self._last_block
        if now == last_now and now.tzinfo is not None:
            return last_block
        block = blocks_since(EPOCH, now, self.chain.gas.block_time_seconds)
        self._last_block = (now, block)
        return block

    def modelled_base_fee_wei(self, now: datetime) -> int:
        """Base fee of the block at `now`, replayed from the profile over the blocks before it.

        `next_base_fee` and the floor are inlined (a fee that rises cannot fall under the
        floor): this loop is most of a backtest swap's gas bill.
        """
        block = self.block_number(now)
        cached = self._base_fee.get(block)
        if cached is not None:
            return cached
        if len(self._base_fee) >= _BASE_FEE_CACHE_BLOCKS:
            self._base_fee.clear()
        floor_wei = self._floor_wei
        fee = self._start_wei
        target = self.chain.gas.block_gas_limit // 2
        # `x // target // 8` in one division: the same floor for the non-negative x here.
        eighth = target * 8
        for gas_used in self._window(block - HISTORY_BLOCKS):
            if gas_used > target:
                rise = fee * (gas_used - target) // eighth
                fee += rise if rise else 1
            else:
                fee -= fee * (target - gas_used) // eighth
                if fee < floor_wei:
                    fee = floor_wei
        self._base_fee[block] = fee
        return fee

    def _window(self, first: int) -> list[int]:
        """Gas used by blocks `first` .. `first + HISTORY_BLOCKS - 1`, reusing the last window's
        draws where this one starts inside it (a transaction manager asks block after block)."""
        last_first, last = self._last_window
        reused = first - last_first
        draws = last[reused : reused + HISTORY_BLOCKS] if 0 <= reused < len(last) else []
        copy = self._gas_used_prefix.copy
        digests = []
        for number in range(first + len(draws), first + HISTORY_BLOCKS):
            h = copy()
            h.update(b"%d" % number)
            digests.append(h.digest())
        # Reduced in one comprehension after hashing: fewer lookups per block than in the loop.
        modulus = self._gas_used_modulus
        draws += [int.from_bytes(d) % modulus for d in digests]
        self._last_window = (first, draws)
        return draws

    def cost(
        self,
        gas_units: int,
        now: datetime,
        native_price_usd: Decimal,
        tx_fastlz_size: int | None = None,
        fees: FeesPaid | None = None,
    ) -> GasCost:
        """The bill for `gas_units` of execution; `tx_fastlz_size` defaults to a swap's size.

        `fees` bills at the fees of the block a simulated transaction landed in (modelled L1 fee).
        """
        profile = self.chain.gas
        live = None if fees is not None else self.live_figures()
        if fees is not None:
            base_wei, tip_wei = fees.base_fee_wei, fees.tip_wei
        elif live is None:
            base_wei = self.modelled_base_fee_wei(now)
            tip_wei = self._tip_wei
        else:
            base_wei = _wei(live.base_fee_gwei)
            tip_wei = _wei(live.priority_fee_gwei)
        if profile.ignores_priority_fee:
            tip_wei = 0
        units = gas_units + profile.l1_gas_units
        key = None
        if live is None:
            # A swap's quote and its fill are billed alike in one block: the same bill twice.
            key = (units, base_wei, tip_wei, tx_fastlz_size, native_price_usd.as_tuple())
            last = self._last_bill
            if last is not None and last[0] == key:
                return last[1]
        execution = money.from_base_units(units * (base_wei + tip_wei), NATIVE_DECIMALS)
        if live is not None and live.l1_fee_native is not None:
            l1_fee = live.l1_fee_native
        else:
            l1_fee = self._modelled_l1_fee(tx_fastlz_size)
        total = money.CONTEXT.add(execution, l1_fee)
        bill = GasCost(
            gas_units=units,
            base_fee_gwei=money.from_base_units(base_wei, GWEI_DECIMALS),
            priority_fee_gwei=money.from_base_units(tip_wei, GWEI_DECIMALS),
            execution_fee_native=execution,
            l1_fee_native=l1_fee,
            total_native=total,
            native_price_usd=native_price_usd,
            total_usd=money.usd(money.mul(total, native_price_usd)),
            source="default" if live is None else "rpc",
        )
        if key is not None:
            self._last_bill = (key, bill)
        return bill

    def approval_cost(
        self, now: datetime, native_price_usd: Decimal, fees: FeesPaid | None = None
    ) -> GasCost:
        """The one-off ERC-20 approve a router needs before it can spend a token."""
        return self.cost(
            self.chain.gas.approve_gas, now, native_price_usd, APPROVE_TX_FASTLZ_SIZE, fees
        )

    def _modelled_l1_fee(self, tx_fastlz_size: int | None) -> Decimal:
        l1 = self.chain.gas.l1
        if l1 is None:
            return Decimal(0)
        fee_wei = fjord_l1_fee_wei(
            l1.swap_tx_fastlz_size if tx_fastlz_size is None else tx_fastlz_size,
            _wei(l1.l1_base_fee_gwei),
            _wei(l1.blob_base_fee_gwei),
            l1.base_fee_scalar,
            l1.blob_base_fee_scalar,
        )
        return money.from_base_units(fee_wei, NATIVE_DECIMALS)
