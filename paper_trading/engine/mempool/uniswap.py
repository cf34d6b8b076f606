"""Uniswap V2/V3 on the wire: router calldata, factory and pool logs, and pool addresses.

Decoding goes through `eth_abi`; selectors and topics are derived from the Solidity signatures
with `eth_utils`, so every constant below can be checked against its signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import event_signature_to_log_topic, function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from paper_trading.engine import money
from paper_trading.engine.chains import Chain, PoolKind, Token
from paper_trading.engine.dex.quote import Side
from paper_trading.engine.dex.rpc import gwei_from_wei
from paper_trading.engine.mempool.events import PendingSwap, PoolCreated, SwapLog


def _topic(signature: str) -> str:
    return "0x" + event_signature_to_log_topic(signature).hex()


PAIR_CREATED_TOPIC = _topic("PairCreated(address,address,address,uint256)")
POOL_CREATED_TOPIC = _topic("PoolCreated(address,address,uint24,int24,address)")
V2_SWAP_TOPIC = _topic("Swap(address,uint256,uint256,uint256,uint256,address)")
V3_SWAP_TOPIC = _topic("Swap(address,address,int256,int256,uint160,uint128,int24)")

#: CREATE2 init code hashes of the pair / pool contracts (the same on every chain).
V2_INIT_CODE_HASH = bytes.fromhex(
    "96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f"
)
V3_INIT_CODE_HASH = bytes.fromhex(
    "e34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"
)

_V3_FACTORY = "0x1F98431c8aD98523631AE4a59f267346ea31F984"


@dataclass(frozen=True)
class Factories:
    v2: str | None
    v3: str | None


#: Uniswap's own factory deployments, by chain id.
FACTORIES: Mapping[int, Factories] = {
    1: Factories("0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f", _V3_FACTORY),
    10: Factories("0x0c3c1c532F1e39EdF36BE9Fe0bE1410313E074Bf", _V3_FACTORY),
    8453: Factories(
        "0x8909Dc15e40173Ff4699343b6eB8132c65e18eC6", "0x33128a8fC17869897dcE68Ed026d694621f6FDfD"
    ),
    42161: Factories("0xf1D7CC64Fb4452F05c498126312eBE29f30Fbcf9", _V3_FACTORY),
    84532: Factories(None, "0x4752ba5DBc23f44D87826276BF6Fd6b1C372aD24"),
}


def _create2(factory: str, salt: bytes, init_code_hash: bytes) -> str:
    raw = keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + init_code_hash)
    return to_checksum_address(raw[12:])


def pool_address(chain: Chain, token: Token) -> str | None:
    """The address of `token`'s main pool against the chain's stablecoin (its PoolSpec)."""
    spec = token.pool
    factories = FACTORIES.get(chain.chain_id)
    if spec is None or factories is None:
        return None
    a, b = sorted((token.address.lower(), chain.quote_token.address.lower()))
    pair = bytes.fromhex(a[2:]) + bytes.fromhex(b[2:])
    if spec.kind is PoolKind.V2:
        if factories.v2 is None:
            return None
        return _create2(factories.v2, keccak(pair), V2_INIT_CODE_HASH)
    if factories.v3 is None:
        return None
    salt = keccak(bytes(12) + pair[:20] + bytes(12) + pair[20:] + spec.fee_pips.to_bytes(32, "big"))
    return _create2(factories.v3, salt, V3_INIT_CODE_HASH)


def tracked_pools(chain: Chain) -> dict[str, Token]:
    """Lower-case pool address -> token, for every tradable token whose pool address is known."""
    pools: dict[str, Token] = {}
    for token in chain.tradable_tokens:
        address = pool_address(chain, token)
        if address is not None:
            pools[address.lower()] = token
    return pools


def factory_addresses(chain: Chain) -> list[str]:
    factories = FACTORIES.get(chain.chain_id)
    if factories is None:
        return []
    return [a for a in (factories.v2, factories.v3) if a is not None]


# --- router calldata ----------------------------------------------------------------------


@dataclass(frozen=True)
class _RouterCall:
    """Where a router function keeps its path and input amount."""

    router: str
    types: tuple[str, ...]
    #: (decoded arguments, tx value in wei) -> (token in, token out, amount in).
    extract: Callable[[tuple[Any, ...], int], tuple[str, str, int]]


def _v2_exact_in(args: tuple[Any, ...], value: int) -> tuple[str, str, int]:
    path = args[2]
    return path[0], path[-1], args[0]


def _v2_eth_in(args: tuple[Any, ...], value: int) -> tuple[str, str, int]:
    path = args[1]
    return path[0], path[-1], value


def _v3_single(amount_index: int) -> Callable[[tuple[Any, ...], int], tuple[str, str, int]]:
    def extract(args: tuple[Any, ...], value: int) -> tuple[str, str, int]:
        params = args[0]
        return params[0], params[1], params[amount_index]

    return extract


_V3_SINGLE = "(address,address,uint24,address,uint256,uint256,uint256,uint160)"
_V3_SINGLE_02 = "(address,address,uint24,address,uint256,uint256,uint160)"
_ROUTER_CALLS: dict[str, tuple[str, _RouterCall]] = {}
for _signature, _call in (
    (
        "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
        _RouterCall("v2", ("uint256", "uint256", "address[]", "address", "uint256"), _v2_exact_in),
    ),
    (
        "swapExactTokensForETH(uint256,uint256,address[],address,uint256)",
        _RouterCall("v2", ("uint256", "uint256", "address[]", "address", "uint256"), _v2_exact_in),
    ),
    (
        "swapExactETHForTokens(uint256,address[],address,uint256)",
        _RouterCall("v2", ("uint256", "address[]", "address", "uint256"), _v2_eth_in),
    ),
    # SwapRouter (with a deadline) and SwapRouter02 (without): amountIn sits at 5 and 4.
    (f"exactInputSingle({_V3_SINGLE})", _RouterCall("v3", (_V3_SINGLE,), _v3_single(5))),
    (f"exactInputSingle({_V3_SINGLE_02})", _RouterCall("v3", (_V3_SINGLE_02,), _v3_single(4))),
):
    _selector = "0x" + function_signature_to_4byte_selector(_signature).hex()
    _ROUTER_CALLS[_selector] = (_signature, _call)

#: The router functions recognised, by selector.
ROUTER_SELECTORS: Mapping[str, str] = {sel: sig for sel, (sig, _) in _ROUTER_CALLS.items()}


def _int(value: object) -> int:
    return int(str(value), 16) if isinstance(value, str) else int(str(value or 0))


def _token_by_address(chain: Chain) -> dict[str, Token]:
    return {t.address.lower(): t for t in chain.tokens.values()}


def decode_pending_swap(tx: Mapping[str, Any], chain: Chain) -> PendingSwap | None:
    """A JSON-RPC transaction object as a swap in a tracked pool, or None if it is not one.

    Tracked pools pair a tradable chain token with the chain's stablecoin; multi-hop paths count
    by their first and last token.
    """
    data = str(tx.get("input") or tx.get("data") or "0x")
    entry = _ROUTER_CALLS.get(data[:10].lower())
    if entry is None:
        return None
    call = entry[1]
    try:
        args = decode(list(call.types), bytes.fromhex(data[10:]))
        token_in, token_out, amount = call.extract(args, _int(tx.get("value")))
    except (DecodingError, ValueError, IndexError):
        return None
    known = _token_by_address(chain)
    t_in, t_out = known.get(token_in.lower()), known.get(token_out.lower())
    quote = chain.quote_token
    if t_in is None or t_out is None:
        return None
    if t_in is quote and t_out in chain.tradable_tokens:
        side, token = Side.BUY, t_out
    elif t_out is quote and t_in in chain.tradable_tokens:
        side, token = Side.SELL, t_in
    else:
        return None
    amount_in = money.from_base_units(amount, t_in.decimals)
    gas_wei = _int(tx.get("maxFeePerGas") or tx.get("gasPrice"))
    return PendingSwap(
        tx_hash=str(tx.get("hash", "")),
        symbol=token.symbol,
        side=side,
        amount_in=amount_in,
        size_usd=amount_in if side is Side.BUY else None,
        gas_price_gwei=gwei_from_wei(gas_wei),
        router=call.router,
    )


# --- logs -----------------------------------------------------------------------------------


def _topic_address(topic: str) -> str:
    return to_checksum_address("0x" + topic[-40:])


BALANCE_OF_SELECTOR = "0x" + function_signature_to_4byte_selector("balanceOf(address)").hex()


def quote_balance_call(chain: Chain, created: PoolCreated) -> dict[str, str] | None:
    """The `eth_call` that reads a new pool's stablecoin balance, or None if it has none.

    The creation log does not say how much was deposited; for a token/USDC pool, twice its USDC
    balance is the pool's value (V2 holds both sides at equal value; for V3 it is the usual
    rough figure), which is what the Fast Lane's liquidity threshold compares against.
    """
    quote = chain.quote_token.address.lower()
    if quote not in (created.token0.lower(), created.token1.lower()):
        return None
    owner = created.pool_address.lower().removeprefix("0x").rjust(64, "0")
    return {"to": chain.quote_token.address, "data": BALANCE_OF_SELECTOR + owner}


def liquidity_from_quote_balance(chain: Chain, result: object) -> Decimal | None:
    """Pool value in USD from the `balanceOf` answer (None if the answer is not a number)."""
    try:
        balance = int(str(result), 16)
    except ValueError:
        return None
    return Decimal(2 * balance).scaleb(-chain.quote_token.decimals)


def decode_log(
    log: Mapping[str, Any], chain: Chain, pools: Mapping[str, Token]
) -> PoolCreated | SwapLog | None:
    """A factory creation or a tracked pool's Swap log, or None for anything else."""
    topics: Sequence[str] = [str(t).lower() for t in log.get("topics", [])]
    if not topics:
        return None
    data = bytes.fromhex(str(log.get("data", "0x"))[2:])
    tx_hash = str(log.get("transactionHash", ""))
    address = str(log.get("address", "")).lower()
    try:
        if topics[0] == PAIR_CREATED_TOPIC and len(topics) == 3:
            pair, _ = decode(["address", "uint256"], data)
            return PoolCreated(
                tx_hash,
                to_checksum_address(pair),
                _topic_address(topics[1]),
                _topic_address(topics[2]),
                3000,
                PoolKind.V2.value,
            )
        if topics[0] == POOL_CREATED_TOPIC and len(topics) == 4:
            _, pool = decode(["int24", "address"], data)
            return PoolCreated(
                tx_hash,
                to_checksum_address(pool),
                _topic_address(topics[1]),
                _topic_address(topics[2]),
                int(topics[3], 16),
                PoolKind.V3.value,
            )
        token = pools.get(address)
        symbol = token.symbol if token else ""
        if topics[0] == V3_SWAP_TOPIC:
            amount0, amount1, *_ = decode(["int256", "int256", "uint160", "uint128", "int24"], data)
            return SwapLog(tx_hash, address, symbol, PoolKind.V3.value, amount0, amount1)
        if topics[0] == V2_SWAP_TOPIC:
            in0, in1, out0, out1 = decode(["uint256"] * 4, data)
            return SwapLog(tx_hash, address, symbol, PoolKind.V2.value, in0 - out0, in1 - out1)
    except (DecodingError, ValueError):
        return None
    return None
