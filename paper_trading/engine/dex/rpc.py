"""Live gas figures from a chain's JSON-RPC node, for `GasModel(live=...)`.

One `eth_feeHistory` call gives the next block's base fee and recent tips; on OP-stack chains an
`eth_call` to the GasPriceOracle predeploy prices the L1 data fee of a swap-sized transaction.
Figures are cached for `refresh_seconds` so a bot quoting every few seconds asks the node at most
once per refresh, and a failure is cached just as long so a dead node does not stall each tick on
its timeout. Errors never show the node URL, only its host: provider URLs carry API keys.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx

from paper_trading.engine import money
from paper_trading.engine.chains import Chain
from paper_trading.engine.dex.gas import (
    GWEI_DECIMALS,
    NATIVE_DECIMALS,
    GasFiguresUnavailableError,
    LiveGasFigures,
)

#: OP-stack GasPriceOracle predeploy.
GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F"
#: keccak256("getL1Fee(bytes)")[:4].
GET_L1_FEE_SELECTOR = bytes.fromhex("49948e0e")
#: Blocks of fee history to read: about two minutes on Ethereum, 20 s on Base.
FEE_HISTORY_BLOCKS = 10
#: Tip percentiles asked for: slow / standard / fast. The standard (50th) one is billed.
REWARD_PERCENTILES = (10, 50, 90)
_STANDARD_TIP_INDEX = 1


def rpc_url_for(chain_id: int, environ: Mapping[str, str]) -> str | None:
    """The node URL configured for a chain (`RPC_URL_8453` for Base), or None to use the model."""
    url = environ.get(f"RPC_URL_{chain_id}", "").strip()
    return url or None


def gwei_from_wei(wei: int) -> Decimal:
    """Wei to gwei, exactly."""
    return money.from_base_units(wei, GWEI_DECIMALS)


def wei_from_gwei(gwei: Decimal) -> int:
    """Gwei to wei; exact for any amount with at most 9 decimal places (finer parts drop)."""
    return money.to_base_units(gwei, GWEI_DECIMALS)


def native_from_wei(wei: int) -> Decimal:
    """Wei to the native token (ETH), exactly."""
    return money.from_base_units(wei, NATIVE_DECIMALS)


class RpcError(GasFiguresUnavailableError):
    """The node could not give gas figures. The message names the host, never the full URL."""

    def __init__(self, host: str, method: str, problem: str) -> None:
        self.host = host
        self.method = method
        self.problem = problem
        super().__init__(f"{method} on {host}: {problem}")


# --- ABI and RLP: just enough to ask the GasPriceOracle about a transaction ---------------------


def encode_get_l1_fee(data: bytes) -> bytes:
    """Calldata for getL1Fee(bytes): selector, offset 0x20, length, data right-padded to 32."""
    padded = data + b"\x00" * (-len(data) % 32)
    return GET_L1_FEE_SELECTOR + (32).to_bytes(32, "big") + len(data).to_bytes(32, "big") + padded


def _rlp_length(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes([offset + length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(size)]) + size


def _rlp(item: int | bytes | list[Any]) -> bytes:
    """RLP encoding of an int (big-endian, no leading zeros), a byte string or a list."""
    if isinstance(item, list):
        body = b"".join(_rlp(i) for i in item)
        return _rlp_length(len(body), 0xC0) + body
    raw = item if isinstance(item, bytes) else item.to_bytes((item.bit_length() + 7) // 8, "big")
    if len(raw) == 1 and raw[0] < 0x80:
        return raw
    return _rlp_length(len(raw), 0x80) + raw


def _word(value: int | str) -> bytes:
    """One ABI word: an int, or a 0x address left-padded."""
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x")).rjust(32, b"\x00")
    return value.to_bytes(32, "big")


#: SwapRouter02 exactInputSingle((address,address,uint24,address,uint256,uint256,uint160)).
_EXACT_INPUT_SINGLE = bytes.fromhex("04e45aaf")
_SWAP_ROUTER_02 = "0x2626664c2603336E57B271c5C0b26F421741e481"
_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
_WETH = "0x4200000000000000000000000000000000000006"
_TRADER = "0x5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c"


def representative_swap_tx(chain_id: int) -> bytes:
    """An unsigned EIP-1559 swap the oracle prices as a typical trade of ours.

    0x02 || rlp([chain_id, nonce 57, tip 0.001 gwei, max fee 0.02 gwei, gas 180_000,
    SwapRouter02, value 0, exactInputSingle(USDC -> WETH, fee 500, recipient, 2_500 USDC in,
    min 0.8 WETH out, no price limit), no access list]), with Base's token addresses on every
    chain. It is 274 bytes, about 120 of them non-zero; FastLZ squeezes the zero runs, and with
    the 68 signature bytes Fjord adds the estimate lands near the profile's 200-byte swap.
    """
    calldata = _EXACT_INPUT_SINGLE + b"".join(
        _word(v) for v in (_USDC, _WETH, 500, _TRADER, 2_500_000_000, 8 * 10**17, 0)
    )
    fields: list[Any] = [
        chain_id,
        57,
        1_000_000,
        20_000_000,
        180_000,
        bytes.fromhex(_SWAP_ROUTER_02.removeprefix("0x")),
        0,
        calldata,
        [],
    ]
    return b"\x02" + _rlp(fields)


# --- the client -----------------------------------------------------------------------------------


class JsonRpcGasOracle:
    """Gas figures for one chain read from its node, cached for `refresh_seconds`.

    Pass `oracle.figures` as `GasModel(live=...)`. `transport` lets tests swap the network out.
    """

    def __init__(
        self,
        url: str,
        chain: Chain,
        timeout_seconds: float = 5,
        refresh_seconds: float = 12,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError(f"RPC timeout must be positive, got {timeout_seconds}")
        if refresh_seconds < 0:
            raise ValueError(f"RPC refresh interval must not be negative, got {refresh_seconds}")
        parsed = httpx.URL(url)
        if parsed.scheme not in {"http", "https"} or not parsed.host:
            # Do not echo the URL: it may carry an API key.
            raise ValueError(f"RPC URL for {chain.name} must be an http(s) URL with a host")
        self.chain = chain
        self.host = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
        self.timeout_seconds = timeout_seconds
        self.refresh_seconds = refresh_seconds
        self._url = url
        self._clock = clock
        self._client = httpx.Client(timeout=timeout_seconds, transport=transport)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._cached: LiveGasFigures | RpcError | None = None
        self._expires_at = 0.0

    def __repr__(self) -> str:
        return f"JsonRpcGasOracle(chain={self.chain.slug!r}, host={self.host!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> JsonRpcGasOracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def figures(self) -> LiveGasFigures:
        """Current figures, from the cache while fresh; raises RpcError when the node fails."""
        with self._lock:
            now = self._clock()
            if self._cached is None or now >= self._expires_at:
                try:
                    self._cached = self._fetch()
                except RpcError as exc:
                    self._cached = exc
                self._expires_at = now + self.refresh_seconds
            cached = self._cached
            if isinstance(cached, RpcError):
                # A fresh exception each time, so re-raising does not pile up tracebacks.
                raise RpcError(cached.host, cached.method, cached.problem)
            return cached

    def _fetch(self) -> LiveGasFigures:
        base_wei, tip_wei = self._fee_history()
        l1_fee = None
        if self.chain.gas.l1 is not None:
            l1_fee = native_from_wei(self._l1_fee_wei())
        return LiveGasFigures(
            base_fee_gwei=gwei_from_wei(base_wei),
            priority_fee_gwei=gwei_from_wei(tip_wei),
            l1_fee_native=l1_fee,
        )

    def _fee_history(self) -> tuple[int, int]:
        """Next block's base fee (the last baseFeePerGas entry) and the median standard tip.

        With an even number of blocks the median is the mean of the middle two, rounded down to
        a whole wei.
        """
        method = "eth_feeHistory"
        params = [hex(FEE_HISTORY_BLOCKS), "latest", list(REWARD_PERCENTILES)]
        result = self._call(method, params)
        if not isinstance(result, dict):
            raise RpcError(
                self.host, method, f"malformed result: expected an object, got {result!r:.80}"
            )
        base_fees = result.get("baseFeePerGas")
        if not isinstance(base_fees, list) or not base_fees:
            raise RpcError(self.host, method, "malformed result: no baseFeePerGas list")
        base_wei = self._quantity(method, base_fees[-1], "baseFeePerGas")
        if self.chain.gas.ignores_priority_fee:
            return base_wei, 0
        rewards = result.get("reward")
        if not isinstance(rewards, list) or not rewards:
            raise RpcError(self.host, method, "malformed result: no reward list")
        tips = []
        for row in rewards:
            if not isinstance(row, list) or len(row) != len(REWARD_PERCENTILES):
                raise RpcError(
                    self.host,
                    method,
                    f"malformed result: reward rows need {len(REWARD_PERCENTILES)} entries, "
                    f"got {row!r:.80}",
                )
            tips.append(self._quantity(method, row[_STANDARD_TIP_INDEX], "reward"))
        tips.sort()
        middle = len(tips) // 2
        tip_wei = tips[middle] if len(tips) % 2 else (tips[middle - 1] + tips[middle]) // 2
        return base_wei, tip_wei

    def _l1_fee_wei(self) -> int:
        """GasPriceOracle.getL1Fee(representative swap): the L1 data fee in wei."""
        method = "eth_call"
        data = encode_get_l1_fee(representative_swap_tx(self.chain.chain_id))
        call = {"to": GAS_PRICE_ORACLE, "data": "0x" + data.hex()}
        result = self._call(method, [call, "latest"])
        if not isinstance(result, str) or not result.startswith("0x"):
            raise RpcError(
                self.host, method, f"malformed result: expected hex data, got {result!r:.80}"
            )
        payload = result[2:]
        if len(payload) != 64:
            raise RpcError(
                self.host,
                method,
                f"malformed result: getL1Fee should return one 32-byte word, got "
                f"{len(payload) // 2} bytes (is {GAS_PRICE_ORACLE} deployed on {self.chain.name}?)",
            )
        try:
            return int(payload, 16)
        except ValueError:
            raise RpcError(
                self.host, method, f"malformed result: not hex: {result!r:.80}"
            ) from None

    def _quantity(self, method: str, value: object, field: str) -> int:
        """A JSON-RPC QUANTITY ("0x1a"): non-negative hex integer."""
        if isinstance(value, str) and value.startswith("0x") and len(value) > 2:
            with contextlib.suppress(ValueError):
                return int(value, 16)
        raise RpcError(self.host, method, f"malformed result: {field} {value!r:.40} is not hex")

    def _scrub(self, text: str) -> str:
        """Node-supplied text with the URL, and any long path part or query value, blanked.

        Providers put API keys in either place and some echo them back in error messages.
        """
        parsed = httpx.URL(self._url)
        text = text.replace(self._url, self.host)
        secrets = [part for part in parsed.path.split("/") if len(part) >= 8]
        secrets += [value for _, value in parsed.params.multi_items() if len(value) >= 8]
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "...")
        return text

    def _call(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC request; every failure becomes an RpcError naming only the host."""
        request_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        try:
            response = self._client.post(self._url, json=body)
        except httpx.TimeoutException:
            raise RpcError(
                self.host, method, f"timed out after {self.timeout_seconds:g}s"
            ) from None
        except httpx.ConnectError:
            raise RpcError(
                self.host, method, "could not connect (connection refused or host unreachable)"
            ) from None
        except httpx.HTTPError as exc:
            raise RpcError(self.host, method, f"transport error ({type(exc).__name__})") from None
        if response.status_code != 200:
            reason = response.reason_phrase or "error"
            raise RpcError(self.host, method, f"HTTP {response.status_code} {reason}")
        try:
            reply = response.json()
        except ValueError:
            raise RpcError(self.host, method, "malformed response: body is not JSON") from None
        if not isinstance(reply, dict):
            raise RpcError(self.host, method, "malformed response: not a JSON-RPC object")
        error = reply.get("error")
        if error is not None:
            if isinstance(error, dict):
                code, message = error.get("code"), error.get("message")
                text = self._scrub(f"{message!s:.200}")
                raise RpcError(self.host, method, f"JSON-RPC error {code}: {text}")
            raise RpcError(self.host, method, f"JSON-RPC error {self._scrub(repr(error)):.200}")
        if reply.get("id") != request_id or "result" not in reply:
            raise RpcError(self.host, method, "malformed response: no result for this request id")
        return reply["result"]
