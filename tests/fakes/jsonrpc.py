"""A loopback Ethereum JSON-RPC node answering the two calls the gas oracle makes.

`eth_feeHistory` replies in the spec's shape from `base_fees_wei` / `rewards_wei`; `eth_call` to
the OP-stack GasPriceOracle checks the getL1Fee(bytes) selector and ABI layout before answering
`l1_fee_wei`, so a test proves the client encodes what a real node would accept. Switches make it
fail the ways real providers do.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000f"
GET_L1_FEE_SELECTOR = "49948e0e"
OLDEST_BLOCK = 24_000_000


class FakeNode:
    """A JSON-RPC node on 127.0.0.1 (any URL path works, as with keyed provider URLs)."""

    def __init__(self) -> None:
        #: Per-block base fees, oldest first; the last is the next block's (block_count + 1).
        self.base_fees_wei: list[int] = [1_000_000_000] * 11
        #: Per-block tips at the 10th/50th/90th percentiles.
        self.rewards_wei: list[list[int]] = [[1, 2, 3]] * 10
        self.l1_fee_wei = 0
        #: (method, params) of every request, in order.
        self.calls: list[tuple[str, Any]] = []
        #: getL1Fee's `bytes` argument, decoded, for each eth_call that passed the ABI checks.
        self.l1_fee_inputs: list[bytes] = []
        #: Failure switches.
        self.error: str | None = None
        self.http_status: int | None = None
        self.garbage = False
        #: Answer eth_feeHistory with non-hex base fees.
        self.malformed = False
        self.delay_seconds = 0.0
        self._lock = threading.Lock()
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                node._handle(self, self.rfile.read(length))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    def _handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        request = json.loads(raw)
        with self._lock:
            self.calls.append((request["method"], request.get("params")))
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if self.http_status is not None:
            self._send(handler, self.http_status, b'{"message": "upstream unavailable"}')
            return
        if self.garbage:
            self._send(handler, 200, b"<html>502 Bad Gateway</html>")
            return
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        if self.error is not None:
            reply["error"] = {"code": -32000, "message": self.error}
        else:
            try:
                reply["result"] = self._answer(request["method"], request.get("params") or [])
            except ValueError as exc:
                reply["error"] = {"code": -32602, "message": str(exc)}
        self._send(handler, 200, json.dumps(reply).encode())

    def _answer(self, method: str, params: list[Any]) -> Any:
        if method == "eth_feeHistory":
            return self._fee_history(params)
        if method == "eth_call":
            return self._call(params)
        raise ValueError(f"the method {method} does not exist/is not available")

    def _fee_history(self, params: list[Any]) -> dict[str, Any]:
        count_hex, newest, percentiles = params
        count = int(count_hex, 16)
        if newest != "latest" or not isinstance(percentiles, list):
            raise ValueError("fake node only serves the latest blocks with reward percentiles")
        base_fees = self.base_fees_wei[-(count + 1) :]
        rewards = self.rewards_wei[-count:]
        blocks = len(base_fees) - 1
        return {
            "oldestBlock": hex(OLDEST_BLOCK - blocks + 1),
            "baseFeePerGas": ["xyz" if self.malformed else hex(fee) for fee in base_fees],
            "gasUsedRatio": [0.5] * blocks,
            "reward": [[hex(tip) for tip in row] for row in rewards[-blocks:]] if blocks else [],
        }

    def _call(self, params: list[Any]) -> str:
        call, _block = params
        if str(call.get("to", "")).lower() != GAS_PRICE_ORACLE:
            raise ValueError("fake node only answers eth_call to the GasPriceOracle")
        data = bytes.fromhex(str(call.get("data", "")).removeprefix("0x"))
        if data[:4].hex() != GET_L1_FEE_SELECTOR:
            raise ValueError("execution reverted: unknown selector")
        offset = int.from_bytes(data[4:36], "big")
        length = int.from_bytes(data[36:68], "big")
        padded = length + (-length % 32)
        if offset != 32 or len(data) != 68 + padded:
            raise ValueError("execution reverted: bad ABI encoding of bytes")
        argument = data[68 : 68 + length]
        if any(data[68 + length :]):
            raise ValueError("execution reverted: non-zero padding")
        with self._lock:
            self.l1_fee_inputs.append(argument)
        return "0x" + self.l1_fee_wei.to_bytes(32, "big").hex()

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (timeout tests)
