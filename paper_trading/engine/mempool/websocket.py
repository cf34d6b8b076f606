"""The live Fast Lane source: a node's WebSocket JSON-RPC, decoded into mempool events.

Runs its asyncio client on a thread of its own and hands decoded events over a queue, so the
Fast Lane (and the Django sinks behind it) stay plain synchronous code.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import websockets

from paper_trading.engine.chains import Chain
from paper_trading.engine.mempool.events import MempoolEvent, PoolCreated
from paper_trading.engine.mempool.sources import Timed
from paper_trading.engine.mempool.uniswap import (
    PAIR_CREATED_TOPIC,
    POOL_CREATED_TOPIC,
    V2_SWAP_TOPIC,
    V3_SWAP_TOPIC,
    decode_log,
    decode_pending_swap,
    factory_addresses,
    liquidity_from_quote_balance,
    quote_balance_call,
    tracked_pools,
)

logger = logging.getLogger("paper_trading.mempool")


class WebSocketEventSource:
    """`eth_subscribe` to pending transactions and Uniswap logs on a node's WebSocket.

    Asks for full pending transactions (`["newPendingTransactions", true]`, geth and most
    providers); a node that refuses sends hashes, each then fetched with
    `eth_getTransactionByHash`. Logs: the factories' PairCreated/PoolCreated and the tracked
    pools' Swap. A dropped connection is reopened with exponential backoff. Log lines name the
    node's host only: provider URLs carry API keys.
    """

    name = "websocket"
    live = True

    def __init__(
        self,
        url: str,
        chain: Chain,
        *,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"ws", "wss"} or not parts.hostname:
            raise ValueError(f"WebSocket RPC URL for {chain.name} must be a ws(s) URL with a host")
        self.url = url
        self.host = parts.netloc.rsplit("@", 1)[-1]
        self.chain = chain
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.clock = clock
        self.pools = tracked_pools(chain)
        #: Connections opened so far (reconnects included).
        self.connections = 0

    def events(self, stop: threading.Event) -> Iterator[Timed]:
        inbox: queue.Queue[Timed] = queue.Queue()
        #: Ends the client thread when the consumer stops or stops reading.
        halt = threading.Event()
        thread = threading.Thread(
            target=lambda: asyncio.run(self._run(inbox, halt)), name="mempool-ws", daemon=True
        )
        thread.start()
        try:
            while not stop.is_set():
                try:
                    yield inbox.get(timeout=0.05)
                except queue.Empty:
                    if not thread.is_alive():
                        return
        finally:
            halt.set()
            thread.join(timeout=5)

    async def _run(self, inbox: queue.Queue[Timed], stop: threading.Event) -> None:
        delay = self.backoff_seconds
        while not stop.is_set():
            try:
                async with websockets.connect(self.url, open_timeout=10) as ws:
                    self.connections += 1
                    delay = self.backoff_seconds
                    await _Subscription(self, ws, inbox, stop).serve()
            except (OSError, TimeoutError, ValueError, websockets.WebSocketException) as exc:
                logger.warning(
                    "[MEMPOOL] %s: %s; reconnecting in %.1f s", self.host, type(exc).__name__, delay
                )
            waited = 0.0
            while waited < delay and not stop.is_set():
                await asyncio.sleep(min(0.1, delay))
                waited += 0.1
            delay = min(delay * 2, self.max_backoff_seconds)


class _Subscription:
    """One connection's subscriptions and the requests still waiting for an answer."""

    def __init__(
        self,
        source: WebSocketEventSource,
        ws: Any,
        inbox: queue.Queue[Timed],
        stop: threading.Event,
    ) -> None:
        self.source = source
        self.ws = ws
        self.inbox = inbox
        self.stop = stop
        self.ids = itertools.count(1)
        #: request id -> what it asked for ("pending_full", "pending_hashes", "logs", "tx").
        self.requests: dict[int, str] = {}
        #: subscription id -> "pending" or "logs".
        self.subscriptions: dict[str, str] = {}
        #: request id -> the new pool whose stablecoin balance was asked for.
        self.new_pools: dict[int, PoolCreated] = {}

    async def send(self, kind: str, method: str, params: list[Any]) -> int:
        request_id = next(self.ids)
        self.requests[request_id] = kind
        await self.ws.send(
            json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        )
        return request_id

    async def serve(self) -> None:
        chain = self.source.chain
        await self.send("pending_full", "eth_subscribe", ["newPendingTransactions", True])
        factories = factory_addresses(chain)
        if factories:
            creation = {"address": factories, "topics": [[PAIR_CREATED_TOPIC, POOL_CREATED_TOPIC]]}
            await self.send("logs", "eth_subscribe", ["logs", creation])
        if self.source.pools:
            swaps = {"address": list(self.source.pools), "topics": [[V2_SWAP_TOPIC, V3_SWAP_TOPIC]]}
            await self.send("logs", "eth_subscribe", ["logs", swaps])
        while not self.stop.is_set():
            try:
                raw = await asyncio.wait_for(self.ws.recv(), timeout=0.1)
            except TimeoutError:
                continue
            await self.handle(json.loads(raw))

    async def handle(self, message: Mapping[str, Any]) -> None:
        if message.get("method") == "eth_subscription":
            params = message.get("params") or {}
            kind = self.subscriptions.get(str(params.get("subscription")))
            result = params.get("result")
            if kind == "pending" and isinstance(result, str):
                await self.send("tx", "eth_getTransactionByHash", [result])
            elif kind == "pending" and isinstance(result, dict):
                self.emit(decode_pending_swap(result, self.source.chain))
            elif kind == "logs" and isinstance(result, dict):
                event = decode_log(result, self.source.chain, self.source.pools)
                call = (
                    quote_balance_call(self.source.chain, event)
                    if isinstance(event, PoolCreated) and event.liquidity_usd is None
                    else None
                )
                if isinstance(event, PoolCreated) and call is not None:
                    # The log is mined, so the pool already holds what its creator deposited.
                    asked = await self.send("liquidity", "eth_call", [call, "latest"])
                    self.new_pools[asked] = event
                else:
                    self.emit(event)
            return
        request_id = message.get("id")
        kind = self.requests.pop(request_id, None) if isinstance(request_id, int) else None
        if kind is None:
            return
        if kind == "liquidity":
            created = self.new_pools.pop(int(str(request_id)))
            value = (
                None
                if "error" in message
                else liquidity_from_quote_balance(self.source.chain, message.get("result"))
            )
            self.emit(replace(created, liquidity_usd=value))
            return
        if "error" in message:
            if kind == "pending_full":
                # This node only streams hashes: ask for those and fetch each transaction.
                await self.send("pending_hashes", "eth_subscribe", ["newPendingTransactions"])
            elif kind != "tx":
                logger.warning("[MEMPOOL] %s refused %s: %s", self.source.host, kind, message)
            return
        result = message.get("result")
        if kind == "tx":
            if isinstance(result, dict):
                self.emit(decode_pending_swap(result, self.source.chain))
        else:
            self.subscriptions[str(result)] = "logs" if kind == "logs" else "pending"

    def emit(self, event: MempoolEvent | None) -> None:
        if event is not None:
            self.inbox.put((self.source.clock(), event))
