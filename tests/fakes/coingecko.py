"""A CoinGecko look-alike on 127.0.0.1, so the real client is tested over real HTTP offline.

It answers `/simple/price`, `/simple/token_price/{platform}` and `/coins/{id}/market_chart`
with the documented JSON shapes, and can misbehave on demand (slow, 429, 5xx, garbage of many
kinds, missing ids, stale data, down) so every failure path of the client runs against a socket
rather than a mock that agrees with whatever the client expects.

    with FakeCoinGecko() as fake:
        fake.set_price("weth", Decimal("3000.5"), change=Decimal("-1.2"))
        config = CoinGeckoConfig(base_url=fake.url)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, get_args
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

API_PREFIX = "/api/v3"

Mode = Literal["healthy", "slow", "rate_limited", "server_error", "garbage", "omit", "stale"]
GarbageKind = Literal[
    "not_json",
    "not_object",
    "missing_usd",
    "string_price",
    "truncated",
    "huge_price",
    "tiny_price",
    "huge_change",
    "future_timestamp",
    "bad_gzip",
    "bad_charset",
]
#: Every kind, for callers that pick one at random.
GARBAGE_KINDS: tuple[GarbageKind, ...] = get_args(GarbageKind)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it; `endpoint` is the path below /api/v3."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]

    @property
    def endpoint(self) -> str:
        return self.path.removeprefix(API_PREFIX)


@dataclass
class _Price:
    usd: Decimal
    change: Decimal | None
    updated_at: datetime | None


@dataclass
class _State:
    mode: Mode = "healthy"
    slow_seconds: float = 0.0
    retry_after: str | None = None
    error_status: int = 500
    garbage: GarbageKind = "not_json"
    omitted: set[str] = field(default_factory=set)
    stale_age: timedelta = timedelta(hours=2)
    required_key: tuple[str, str] | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeCoinGecko) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeout tests do) is expected, not worth a traceback."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows failures, not access logs."""

    def reply(
        self,
        status: int,
        body: str,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _dumps(value: object) -> str:
    """JSON with Decimals written as the exact number text, the way CoinGecko sends them."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    return json.dumps(value)


def _weth(usd: str, updated: int, extra: str = "") -> str:
    """A /simple/price body for weth with raw number text (garbage needs what JSON allows)."""
    return f'{{"weth": {{"usd": {usd}{extra}, "last_updated_at": {updated}}}}}'


class FakeCoinGecko:
    """Thread-backed fake CoinGecko API; `url` ends in /api/v3 like the real base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._prices: dict[str, _Price] = {}
        self._token_prices: dict[tuple[str, str], _Price] = {}
        self._charts: dict[str, list[tuple[datetime, Decimal]]] = {}
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeCoinGecko:
        self._wake.clear()
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wake any handler sleeping in slow mode."""
        self._wake.set()
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def down(self) -> None:
        """Close the listening socket: clients now get 'connection refused'."""
        self.stop()

    def up(self) -> None:
        """Listen again on the same port after `down()`."""
        if self._server is None:
            self.start()

    def __enter__(self) -> FakeCoinGecko:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------------ data

    def set_price(
        self,
        coin_id: str,
        usd: Decimal,
        *,
        change: Decimal | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        """Price a coin id; `updated_at=None` means "updated at the moment of each request"."""
        with self._lock:
            self._prices[coin_id] = _Price(usd, change, updated_at)

    def set_token_price(
        self,
        platform: str,
        address: str,
        usd: Decimal,
        *,
        change: Decimal | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        with self._lock:
            self._token_prices[(platform, address.lower())] = _Price(usd, change, updated_at)

    def remove_price(self, coin_id: str) -> None:
        with self._lock:
            self._prices.pop(coin_id, None)

    def set_chart(self, coin_id: str, points: Sequence[tuple[datetime, Decimal]]) -> None:
        with self._lock:
            self._charts[coin_id] = list(points)

    # ------------------------------------------------------------------ modes

    @property
    def mode(self) -> Mode:
        with self._lock:
            return self._state.mode

    def healthy(self) -> None:
        """Back to normal answers (keeps prices and any required API key)."""
        with self._lock:
            self._state = _State(required_key=self._state.required_key)

    def slow(self, seconds: float) -> None:
        """Wait `seconds` before answering (use more than the client's timeout)."""
        self._set_mode("slow", slow_seconds=seconds)

    def rate_limited(self, retry_after: str | int | float | None = None) -> None:
        """HTTP 429, with a Retry-After header if given (seconds or an HTTP date)."""
        self._set_mode(
            "rate_limited", retry_after=None if retry_after is None else str(retry_after)
        )

    def server_error(self, status: int = 500) -> None:
        self._set_mode("server_error", error_status=status)

    def garbage(self, kind: GarbageKind = "not_json") -> None:
        """HTTP 200 with a body that is not the documented JSON."""
        self._set_mode("garbage", garbage=kind)

    def omit(self, *coin_ids: str) -> None:
        """Leave these ids (or contract addresses) out of price answers, as CoinGecko does."""
        self._set_mode("omit", omitted={c.lower() for c in coin_ids})

    def stale(self, age: timedelta = timedelta(hours=2)) -> None:
        """Report every price's last_updated_at as `age` ago."""
        self._set_mode("stale", stale_age=age)

    def require_api_key(self, key: str, plan: Literal["demo", "pro"] = "demo") -> None:
        """Answer 401 unless the request carries `key` in the plan's header."""
        header = "x-cg-pro-api-key" if plan == "pro" else "x-cg-demo-api-key"
        with self._lock:
            self._state.required_key = (header, key)

    def _set_mode(self, mode: Mode, **settings: Any) -> None:
        with self._lock:
            state = _State(mode=mode, required_key=self._state.required_key)
            for name, value in settings.items():
                setattr(state, name, value)
            self._state = state

    # ------------------------------------------------------------------ serving

    def _handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self._requests.append(RecordedRequest("GET", parts.path, query, headers))
            state = self._state
        if state.mode == "slow":
            self._wake.wait(state.slow_seconds)
            if self._wake.is_set():
                return
        if state.required_key is not None:
            header, key = state.required_key
            if headers.get(header) != key:
                body = {"status": {"error_code": 10002, "error_message": "API Key Missing"}}
                handler.reply(401, _dumps(body))
                return
        if state.mode == "rate_limited":
            handler.send_response(429)
            if state.retry_after is not None:
                handler.send_header("Retry-After", state.retry_after)
            payload = _dumps(
                {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit"}}
            ).encode()
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if state.mode == "server_error":
            handler.reply(
                state.error_status, "<html><body>upstream error</body></html>", "text/html"
            )
            return
        if state.mode == "garbage":
            text, content_type, extra = self._garbage(state.garbage)
            handler.reply(200, text, content_type, extra)
            return
        status, answer = self._route(parts.path, query, state)
        handler.reply(status, _dumps(answer))

    def _route(self, path: str, query: dict[str, str], state: _State) -> tuple[int, object]:
        if not path.startswith(API_PREFIX + "/"):
            return 404, {"error": "Not found"}
        endpoint = path.removeprefix(API_PREFIX)
        segments = [unquote(s) for s in endpoint.strip("/").split("/")]
        if segments == ["simple", "price"]:
            return self._simple(query, state, "ids", lambda k: self._prices.get(k))
        if len(segments) == 3 and segments[:2] == ["simple", "token_price"]:
            platform = segments[2]
            return self._simple(
                query,
                state,
                "contract_addresses",
                lambda k: self._token_prices.get((platform, k.lower())),
            )
        if len(segments) == 3 and segments[0] == "coins" and segments[2] == "market_chart":
            return self._chart(segments[1], query)
        return 404, {"error": "Not found"}

    def _simple(
        self,
        query: dict[str, str],
        state: _State,
        key_param: str,
        lookup: Callable[[str], _Price | None],
    ) -> tuple[int, object]:
        for required in (key_param, "vs_currencies"):
            if not query.get(required):
                return 400, {"error": f"Missing parameter {required}"}
        if "usd" not in query["vs_currencies"].split(","):
            return 200, {}
        now = datetime.now(UTC)
        body: dict[str, object] = {}
        with self._lock:
            for raw in query[key_param].split(","):
                key = raw.strip().lower() if key_param == "contract_addresses" else raw.strip()
                price = lookup(key)
                if price is None or (state.mode == "omit" and key.lower() in state.omitted):
                    continue
                entry: dict[str, object] = {"usd": price.usd}
                if query.get("include_24hr_change") == "true":
                    entry["usd_24h_change"] = price.change
                if query.get("include_last_updated_at") == "true":
                    updated = price.updated_at or now
                    if state.mode == "stale":
                        updated = now - state.stale_age
                    entry["last_updated_at"] = int(updated.timestamp())
                body[key] = entry
        return 200, body

    def _chart(self, coin_id: str, query: dict[str, str]) -> tuple[int, object]:
        if query.get("vs_currency") != "usd" or not query.get("days", "").isdigit():
            return 400, {"error": "invalid vs_currency or days"}
        with self._lock:
            points = self._charts.get(coin_id)
            price = self._prices.get(coin_id)
        if points is None:
            if price is None:
                return 404, {"error": "coin not found"}
            now = datetime.now(UTC).replace(microsecond=0)
            points = [(now - timedelta(hours=1), price.usd), (now, price.usd)]
        prices = [[int(t.timestamp() * 1000), value] for t, value in points]
        return 200, {"prices": prices, "market_caps": [], "total_volumes": []}

    @staticmethod
    def _garbage(kind: GarbageKind) -> tuple[str, str, dict[str, str]]:
        """(body, content type, extra headers) of a 200 answer that is not usable JSON."""
        json_type = "application/json"
        fresh = int(datetime.now(UTC).timestamp())
        if kind == "not_json":
            return "<html><body>Just a moment...</body></html>", "text/html", {}
        if kind == "not_object":
            return "[1, 2, 3]", json_type, {}
        if kind == "missing_usd":
            return '{"weth": {"eur": 2800.1, "last_updated_at": 1732000000}}', json_type, {}
        if kind == "string_price":
            return '{"weth": {"usd": "lots", "last_updated_at": 1732000000}}', json_type, {}
        if kind == "huge_price":  # more digits than any ledger column holds
            return _weth("1e400", fresh), json_type, {}
        if kind == "tiny_price":  # positive, yet zero at the ledger's 18 decimal places
            return _weth("1e-30", fresh), json_type, {}
        if kind == "huge_change":
            return _weth("3333.33", fresh, ', "usd_24h_change": 1e400'), json_type, {}
        if kind == "future_timestamp":  # a plausible price dated a year ahead of the clock
            return _weth("3333.33", fresh + 365 * 86400), json_type, {}
        if kind == "bad_gzip":  # says gzip, is not
            return _weth("3333.33", fresh), json_type, {"Content-Encoding": "gzip"}
        if kind == "bad_charset":  # says UTF-16, is ASCII
            return _weth("3333.33", fresh), "application/json; charset=utf-16", {}
        return '{"weth": {"usd": 30', json_type, {}


@pytest.fixture
def fake_coingecko() -> Iterator[FakeCoinGecko]:
    """A running fake for one test, stopped afterwards even if the test fails."""
    with FakeCoinGecko() as fake:
        yield fake
