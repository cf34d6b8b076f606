"""Chains, their gas profiles, tokens and default pools.

Numbers here are defaults a user can override (pool depth) or that live RPC data replaces
(base fee, priority fee, L1 fee): see REFERENCE notes in the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


class PoolKind(StrEnum):
    V2 = "v2"
    V3 = "v3"


@dataclass(frozen=True)
class PoolSpec:
    """A token's main pool against the chain's USD stablecoin.

    `tvl_usd` is the pool's value; for V3 it sits within `range_percent` either side of the
    current price, which is what makes concentrated liquidity deeper than V2 for the same TVL.
    """

    kind: PoolKind
    fee_pips: int
    tvl_usd: Decimal
    range_percent: Decimal = Decimal(10)


@dataclass(frozen=True)
class Token:
    symbol: str
    address: str
    decimals: int
    coingecko_id: str
    #: Symbol of the recorded candle series that prices this token (ETH prices WETH).
    price_symbol: str
    is_quote: bool = False
    pool: PoolSpec | None = None


@dataclass(frozen=True)
class L1FeeParams:
    """OP-stack (Fjord) L1 data fee inputs: the L2 pays for posting its data to Ethereum."""

    l1_base_fee_gwei: Decimal
    blob_base_fee_gwei: Decimal
    base_fee_scalar: int
    blob_base_fee_scalar: int
    #: FastLZ-compressed size of a signed swap transaction, in bytes.
    swap_tx_fastlz_size: int


@dataclass(frozen=True)
class GasProfile:
    block_time_seconds: Decimal
    base_fee_gwei: Decimal
    min_base_fee_gwei: Decimal
    priority_fee_gwei: Decimal
    block_gas_limit: int
    #: Arbitrum's sequencer is first-come-first-served: tips buy nothing and are not paid.
    ignores_priority_fee: bool = False
    l1: L1FeeParams | None = None
    #: Gas units on top of execution that pay for L1 data (Arbitrum folds it into gas used).
    l1_gas_units: int = 0
    v2_swap_gas: int = 121_000
    v3_swap_gas: int = 120_000
    approve_gas: int = 50_000


@dataclass(frozen=True)
class Chain:
    chain_id: int
    slug: str
    name: str
    native_symbol: str
    #: Token whose price is the native token's price (ETH is priced by WETH).
    native_price_token: str
    gas: GasProfile
    tokens: dict[str, Token] = field(default_factory=dict)
    is_testnet: bool = False
    #: Chain whose tokens price this one's (testnets use their mainnet twin).
    price_twin_chain_id: int | None = None
    coingecko_platform: str | None = None
    public_mempool: bool = True

    @property
    def quote_token(self) -> Token:
        """The USD stablecoin every pool trades against."""
        return self.tokens["USDC"]

    @property
    def tradable_tokens(self) -> list[Token]:
        return [t for t in self.tokens.values() if not t.is_quote and t.pool is not None]

    def token(self, symbol: str) -> Token:
        try:
            return self.tokens[symbol.upper()]
        except KeyError:
            raise UnknownTokenError(symbol, self) from None


class UnknownChainError(ValueError):
    def __init__(self, value: str | int) -> None:
        known = ", ".join(f"{c.slug} ({c.chain_id})" for c in CHAINS.values())
        super().__init__(f"unknown chain {value!r}; known chains: {known}")


class UnknownTokenError(ValueError):
    def __init__(self, symbol: str, chain: Chain) -> None:
        super().__init__(
            f"unknown token {symbol!r} on {chain.name}; known: {', '.join(chain.tokens)}"
        )


D = Decimal


def _v3(fee_pips: int, tvl_millions: str, range_percent: str = "10") -> PoolSpec:
    return PoolSpec(PoolKind.V3, fee_pips, D(tvl_millions) * 1_000_000, D(range_percent))


def _v2(tvl_millions: str) -> PoolSpec:
    return PoolSpec(PoolKind.V2, 3000, D(tvl_millions) * 1_000_000)


def _t(
    symbol: str,
    address: str,
    decimals: int,
    cg: str,
    pool: PoolSpec | None = None,
    price_symbol: str | None = None,
) -> Token:
    quote = symbol in {"USDC", "DAI"}
    return Token(
        symbol=symbol,
        address=address,
        decimals=decimals,
        coingecko_id=cg,
        price_symbol=price_symbol or {"WETH": "ETH", "WBTC": "BTC"}.get(symbol, symbol),
        is_quote=quote,
        pool=pool,
    )


ETHEREUM = Chain(
    chain_id=1,
    slug="ethereum",
    name="Ethereum",
    native_symbol="ETH",
    native_price_token="WETH",
    coingecko_platform="ethereum",
    gas=GasProfile(
        block_time_seconds=D(12),
        base_fee_gwei=D("2"),
        min_base_fee_gwei=D("0.05"),
        priority_fee_gwei=D("0.5"),
        block_gas_limit=45_000_000,
    ),
    tokens={
        t.symbol: t
        for t in [
            _t("WETH", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", 18, "weth", _v3(500, "150")),
            _t("USDC", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 6, "usd-coin"),
            _t("DAI", "0x6B175474E89094C44Da98b954EedeAC495271d0F", 18, "dai"),
            _t(
                "WBTC",
                "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599",
                8,
                "wrapped-bitcoin",
                _v3(3000, "60"),
            ),
            _t("UNI", "0x1f9840a85d5aF5bf1D1762F925BDADdC4201F984", 18, "uniswap", _v3(3000, "25")),
            _t("AAVE", "0x7Fc66500c84A76Ad7e9c93437bFc5Ac33E2DDaE9", 18, "aave", _v3(3000, "15")),
            _t(
                "LINK",
                "0x514910771AF9Ca656af840dff83E8264EcF986CA",
                18,
                "chainlink",
                _v3(3000, "20"),
            ),
            _t("ARB", "0xB50721BCf8d664c30412Cfbc6cf7a15145234ad1", 18, "arbitrum", _v2("2")),
            _t(
                "MATIC", "0x7D1AfA7B718fb893dB30A3aBc0Cfc608AaCfeBB0", 18, "matic-network", _v2("3")
            ),
        ]
    },
)

_BASE_L1 = L1FeeParams(
    l1_base_fee_gwei=D("2"),
    blob_base_fee_gwei=D("0.000000001"),
    base_fee_scalar=2269,
    blob_base_fee_scalar=1_055_762,
    swap_tx_fastlz_size=200,
)

BASE = Chain(
    chain_id=8453,
    slug="base",
    name="Base",
    native_symbol="ETH",
    native_price_token="WETH",
    coingecko_platform="base",
    gas=GasProfile(
        block_time_seconds=D(2),
        base_fee_gwei=D("0.005"),
        min_base_fee_gwei=D("0.0002"),
        priority_fee_gwei=D("0.001"),
        block_gas_limit=150_000_000,
        l1=_BASE_L1,
    ),
    tokens={
        t.symbol: t
        for t in [
            _t("WETH", "0x4200000000000000000000000000000000000006", 18, "weth", _v3(500, "40")),
            _t("USDC", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", 6, "usd-coin"),
            _t("DAI", "0x50c5725949A6F0c72E6C4a641F24049A917DB0Cb", 18, "dai"),
            _t(
                "WBTC",
                "0x0555E30da8f98308EdB960aa94C0Db47230d2B9c",
                8,
                "wrapped-bitcoin",
                _v3(3000, "5"),
            ),
            _t("UNI", "0xc3De830EA07524a0761646a6a4e4be0e114a3C83", 18, "uniswap", _v2("0.5")),
            _t("AAVE", "0x63706e401c06ac8513145b7687A14804d17f814b", 18, "aave", _v3(3000, "1")),
            _t(
                "LINK",
                "0x88Fb150BDc53A65fe94Dea0c9BA0a6dAf8C6e196",
                18,
                "chainlink",
                _v3(3000, "2"),
            ),
        ]
    },
)

OPTIMISM = Chain(
    chain_id=10,
    slug="optimism",
    name="OP Mainnet",
    native_symbol="ETH",
    native_price_token="WETH",
    coingecko_platform="optimistic-ethereum",
    gas=GasProfile(
        block_time_seconds=D(2),
        base_fee_gwei=D("0.001"),
        min_base_fee_gwei=D("0.0001"),
        priority_fee_gwei=D("0.001"),
        block_gas_limit=40_000_000,
        l1=_BASE_L1,
    ),
    tokens={
        t.symbol: t
        for t in [
            _t("WETH", "0x4200000000000000000000000000000000000006", 18, "weth", _v3(500, "15")),
            _t("USDC", "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85", 6, "usd-coin"),
            _t("DAI", "0xDA10009cBd5D07dd0CeCc66161FC93D7c9000da1", 18, "dai"),
            _t(
                "WBTC",
                "0x68f180fcCe6836688e9084f035309E29Bf0A2095",
                8,
                "wrapped-bitcoin",
                _v3(3000, "3"),
            ),
            _t("OP", "0x4200000000000000000000000000000000000042", 18, "optimism", _v3(3000, "8")),
            _t("LINK", "0x350a791Bfc2C21F9Ed5d10980Dad2e2638ffa7f6", 18, "chainlink", _v2("1")),
            _t("UNI", "0x6fd9d7AD17242c41f7131d257212c54A0e816691", 18, "uniswap", _v2("0.5")),
            _t("AAVE", "0x76FB31fb4af56892A25e32cFC43De717950c9278", 18, "aave", _v2("0.5")),
        ]
    },
)

ARBITRUM = Chain(
    chain_id=42161,
    slug="arbitrum",
    name="Arbitrum One",
    native_symbol="ETH",
    native_price_token="WETH",
    coingecko_platform="arbitrum-one",
    public_mempool=False,
    gas=GasProfile(
        block_time_seconds=D("0.25"),
        base_fee_gwei=D("0.01"),
        min_base_fee_gwei=D("0.01"),
        priority_fee_gwei=D("0"),
        block_gas_limit=32_000_000,
        ignores_priority_fee=True,
        l1_gas_units=60_000,
    ),
    tokens={
        t.symbol: t
        for t in [
            _t("WETH", "0x82aF49447D8a07e3bd95BD0d56f35241523fBab1", 18, "weth", _v3(500, "60")),
            _t("USDC", "0xaf88d065e77c8cC2239327C5EDb3A432268e5831", 6, "usd-coin"),
            _t("DAI", "0xDA10009cBd5D07dd0CeCc66161FC93D7c9000da1", 18, "dai"),
            _t(
                "WBTC",
                "0x2f2a2543B76A4166549F7aaB2e75Bef0aefC5B0f",
                8,
                "wrapped-bitcoin",
                _v3(500, "20"),
            ),
            _t("ARB", "0x912CE59144191C1204E64559FE8253a0e49E6548", 18, "arbitrum", _v3(500, "10")),
            _t("UNI", "0xFa7F8980b0f1E64A2062791cc3b0871572f1F7f0", 18, "uniswap", _v3(3000, "1")),
            _t(
                "LINK",
                "0xf97f4df75117a78c1A5a0DBb814Af92458539FB4",
                18,
                "chainlink",
                _v3(3000, "3"),
            ),
            _t("AAVE", "0xba5DdD1f9d7F570dc94a51479a000E3BCE967196", 18, "aave", _v3(3000, "1")),
        ]
    },
)

BASE_SEPOLIA = Chain(
    chain_id=84532,
    slug="base-sepolia",
    name="Base Sepolia",
    native_symbol="ETH",
    native_price_token="WETH",
    is_testnet=True,
    price_twin_chain_id=BASE.chain_id,
    gas=GasProfile(
        block_time_seconds=D(2),
        base_fee_gwei=D("0.001"),
        min_base_fee_gwei=D("0.0002"),
        priority_fee_gwei=D("0.001"),
        block_gas_limit=60_000_000,
        l1=_BASE_L1,
    ),
    tokens={
        t.symbol: t
        for t in [
            _t("WETH", "0x4200000000000000000000000000000000000006", 18, "weth", _v3(3000, "0.2")),
            _t("USDC", "0x036CbD53842c5426634e7929541eC2318f3dCF7e", 6, "usd-coin"),
        ]
    },
)

CHAINS: dict[int, Chain] = {
    c.chain_id: c for c in (ETHEREUM, OPTIMISM, BASE, ARBITRUM, BASE_SEPOLIA)
}
DEFAULT_CHAIN_ID = BASE.chain_id


def get_chain(value: str | int) -> Chain:
    """Look a chain up by id (`8453`) or slug (`base`)."""
    text = str(value).strip().lower()
    if text.isdigit() and int(text) in CHAINS:
        return CHAINS[int(text)]
    for chain in CHAINS.values():
        if chain.slug == text:
            return chain
    raise UnknownChainError(value)
