"""A loopback Ethereum WebSocket JSON-RPC node that streams recorded subscriptions.

It answers `eth_subscribe` with a subscription id and then pushes `eth_subscription`
notifications the way geth documents them: every recorded pending transaction (in full, or as a
hash when `full_pending` is off: the node then refuses `[..., true]` as many providers do, and
answers `eth_getTransactionByHash`), and every recorded log whose first topic the filter asks
for. `drop_first_connection` closes the first connection once it has subscribed, to test
reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from types import TracebackType
from typing import Any

from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector
from websockets.asyncio.server import ServerConnection, serve

from paper_trading.engine.chains import get_chain
from paper_trading.engine.mempool.uniswap import (
    FACTORIES,
    POOL_CREATED_TOPIC,
    V3_SWAP_TOPIC,
    pool_address,
)


class FakeWsNode:
    def __init__(
        self,
        pending: list[dict[str, Any]] | None = None,
        logs: list[dict[str, Any]] | None = None,
        *,
        full_pending: bool = True,
        drop_first_connection: bool = False,
        balances: dict[str, int] | None = None,
    ) -> None:
        self.pending = list(pending or [])
        self.logs = list(logs or [])
        self.full_pending = full_pending
        self.drop_first_connection = drop_first_connection
        #: ERC-20 balanceOf answers by holder address (lower case), in base units; others 0.
        self.balances = {k.lower(): v for k, v in (balances or {}).items()}
        #: (method, params) of every request, in order.
        self.calls: list[tuple[str, Any]] = []
        self.connections = 0
        self._ids = itertools.count(1)
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stopped: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("fake WebSocket node did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stopped = self._loop.create_future()
        async with serve(self._handle, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}/v3/secret-key"
            self._ready.set()
            await self._stopped

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        first = self.connections == 1
        async for raw in ws:
            request = json.loads(raw)
            method, params = request["method"], request.get("params", [])
            self.calls.append((method, params))
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
            notifications: list[Any] = []
            if method == "eth_subscribe" and params[0] == "newPendingTransactions":
                full = len(params) > 1 and params[1] is True
                if full and not self.full_pending:
                    reply["error"] = {"code": -32602, "message": "invalid argument 1"}
                else:
                    reply["result"] = sub = hex(next(self._ids))
                    notifications = [(sub, tx if full else tx["hash"]) for tx in self.pending]
            elif method == "eth_subscribe" and params[0] == "logs":
                reply["result"] = sub = hex(next(self._ids))
                wanted = set(params[1]["topics"][0])
                notifications = [(sub, log) for log in self.logs if log["topics"][0] in wanted]
            elif method == "eth_call" and params[0]["data"].startswith("0x70a08231"):
                holder = "0x" + params[0]["data"][-40:]
                reply["result"] = "0x" + self.balances.get(holder, 0).to_bytes(32, "big").hex()
            elif method == "eth_getTransactionByHash":
                reply["result"] = next((t for t in self.pending if t["hash"] == params[0]), None)
            else:
                reply["error"] = {"code": -32601, "message": f"the method {method} does not exist"}
            await ws.send(json.dumps(reply))
            if first and self.drop_first_connection and method == "eth_subscribe":
                await ws.close()
                return
            for sub, result in notifications:
                note = {"subscription": sub, "result": result}
                await ws.send(
                    json.dumps({"jsonrpc": "2.0", "method": "eth_subscription", "params": note})
                )

    def close(self) -> None:
        stopped = self._stopped
        if stopped is not None:
            self._loop.call_soon_threadsafe(stopped.set_result, None)
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeWsNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- recorded chain data, encoded as a node sends it ----------------------------------------

_EXACT_INPUT_SINGLE_02 = "(address,address,uint24,address,uint256,uint256,uint160)"


def v3_swap_tx(
    tx_hash: str, token_in: str, token_out: str, amount_in: int, fee: int = 500
) -> dict[str, Any]:
    """A pending SwapRouter02 exactInputSingle transaction as `eth_getTransactionByHash` shows."""
    args = (token_in, token_out, fee, "0x" + "11" * 20, amount_in, 0, 0)
    data = function_signature_to_4byte_selector(f"exactInputSingle({_EXACT_INPUT_SINGLE_02})")
    data += encode([_EXACT_INPUT_SINGLE_02], [args])
    return _tx(tx_hash, data)


def v2_swap_tx(tx_hash: str, path: list[str], amount_in: int) -> dict[str, Any]:
    """A pending V2 Router02 swapExactTokensForTokens transaction."""
    signature = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
    types = ["uint256", "uint256", "address[]", "address", "uint256"]
    data = function_signature_to_4byte_selector(signature)
    data += encode(types, [amount_in, 0, path, "0x" + "11" * 20, 2**32])
    return _tx(tx_hash, data)


def _tx(tx_hash: str, data: bytes) -> dict[str, Any]:
    return {
        "hash": tx_hash,
        "from": "0x" + "22" * 20,
        "to": "0x2626664c2603336E57B271c5C0b26F421741e481",
        "input": "0x" + data.hex(),
        "value": "0x0",
        "gas": hex(200_000),
        "maxFeePerGas": hex(20_000_000),
        "maxPriorityFeePerGas": hex(1_000_000),
        "nonce": "0x1",
        "type": "0x2",
    }


def _address_topic(address: str) -> str:
    return "0x" + address[2:].lower().rjust(64, "0")


def pool_created_log(
    factory: str, token0: str, token1: str, fee: int, pool: str, tx_hash: str
) -> dict[str, Any]:
    """A V3 factory PoolCreated log."""
    return {
        "address": factory,
        "topics": [
            POOL_CREATED_TOPIC,
            _address_topic(token0),
            _address_topic(token1),
            "0x" + fee.to_bytes(32, "big").hex(),
        ],
        "data": "0x" + encode(["int24", "address"], [10, pool]).hex(),
        "transactionHash": tx_hash,
        "blockNumber": "0x10",
        "logIndex": "0x0",
        "removed": False,
    }


def v3_swap_log(pool: str, amount0: int, amount1: int, tx_hash: str) -> dict[str, Any]:
    """A V3 pool Swap log."""
    sender = _address_topic("0x" + "11" * 20)
    return {
        "address": pool,
        "topics": [V3_SWAP_TOPIC, sender, sender],
        "data": "0x"
        + encode(
            ["int256", "int256", "uint160", "uint128", "int24"],
            [amount0, amount1, 2**96, 10**18, 0],
        ).hex(),
        "transactionHash": tx_hash,
        "blockNumber": "0x11",
        "logIndex": "0x1",
        "removed": False,
    }


#: A pool address the Base factory "creates" in the recordings.
NEW_POOL = "0x" + "ab" * 20


def h(n: int) -> str:
    """A transaction hash made from a number."""
    return "0x" + f"{n:064x}"


def usdc(amount: int) -> int:
    """Whole USDC in base units."""
    return amount * 10**6


def recorded_base_chain() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """On Base: a $5M pending WETH buy (h(10)), a $1,000 one (h(11)), a plain transfer; a new
    AAVE/USDC pool (h(13)) and the big buy's Swap log in the WETH pool."""
    chain = get_chain("base")
    weth, usdc_token = chain.token("WETH").address, chain.quote_token.address
    factory, pool = FACTORIES[chain.chain_id].v3, pool_address(chain, chain.token("WETH"))
    assert factory is not None
    assert pool is not None
    pending = [
        v3_swap_tx(h(10), usdc_token, weth, usdc(5_000_000)),
        v3_swap_tx(h(11), usdc_token, weth, usdc(1_000)),
        {"hash": h(12), "input": "0x", "value": "0x1"},
    ]
    logs = [
        pool_created_log(factory, chain.token("AAVE").address, usdc_token, 3000, NEW_POOL, h(13)),
        v3_swap_log(pool, -(10**21), usdc(5_000_000), h(10)),
    ]
    return pending, logs
