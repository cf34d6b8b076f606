"""Live prices from the CoinGecko API: one bulk request prices every token the app knows.

The client makes exactly one HTTP request per call and never retries: the demo tier allows
about 30 calls a minute, so retry and back-off policy belongs to the caching layer above, which
can see every bot's demand at once. Every failure surfaces as a typed subclass of
`PriceUnavailableError` whose message a trader can act on, so the engine treats an outage as
"no prices" instead of crashing or, worse, trading on an invented number.

Numbers are parsed from the raw JSON text straight into `Decimal`: a float would turn
3881.03 into 3881.0300000000002 before the ledger ever saw it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from asgiref.sync import async_to_sync

from paper_trading.engine import money
from paper_trading.engine.chains import CHAINS, Token
from paper_trading.engine.prices.feed import PriceQuote, PriceSnapshot, PriceUnavailableError

DEMO_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_BASE_URL = "https://pro-api.coingecko.com/api/v3"

Plan = Literal["demo", "pro"]
_PLANS: dict[str, Plan] = {"demo": "demo", "pro": "pro"}
_KEY_HEADERS: dict[Plan, str] = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}
_USER_AGENT = "dexpaper/0.1 (+paper trading)"
#: The largest price the ledger's price columns hold (22 integer digits); beyond it an answer
#: is broken, not a market.
MAX_PRICE_USD = Decimal(10) ** (money.PRICE_MAX_DIGITS - money.PRICE_PLACES)
#: The largest 24 h change the API's ratio fields show (20 digits, 4 of them decimals).
MAX_CHANGE_PERCENT = Decimal(10) ** 16
_T = TypeVar("_T")


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class CoinGeckoConfig:
    """Where CoinGecko lives and how to authenticate; built from the environment in production."""

    base_url: str = DEMO_BASE_URL
    api_key: str | None = None
    plan: Plan = "demo"
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.plan not in _PLANS:
            raise ValueError(f"CoinGecko plan must be 'demo' or 'pro', got {self.plan!r}")
        if not self.timeout_seconds > 0:
            raise ValueError(f"CoinGecko timeout must be positive, got {self.timeout_seconds!r}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> CoinGeckoConfig:
        """Read COINGECKO_API_URL / _API_KEY / _API_PLAN / _TIMEOUT_SECONDS (empty = unset)."""

        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        plan_text = (get("COINGECKO_API_PLAN") or "demo").lower()
        plan = _PLANS.get(plan_text)
        if plan is None:
            raise ValueError(
                f"COINGECKO_API_PLAN must be 'demo' or 'pro', got {environ['COINGECKO_API_PLAN']!r}"
            )
        base_url = get("COINGECKO_API_URL") or (PRO_BASE_URL if plan == "pro" else DEMO_BASE_URL)
        timeout_text = get("COINGECKO_TIMEOUT_SECONDS")
        timeout = 10.0
        if timeout_text is not None:
            try:
                timeout = float(timeout_text)
            except ValueError:
                timeout = float("nan")
            if not timeout > 0:
                raise ValueError(
                    "COINGECKO_TIMEOUT_SECONDS must be a positive number of seconds, "
                    f"got {timeout_text!r}"
                )
        return cls(
            base_url=base_url,
            api_key=get("COINGECKO_API_KEY"),
            plan=plan,
            timeout_seconds=timeout,
        )

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc or self.base_url

    def headers(self) -> dict[str, str]:
        """Request headers; the key goes in the plan's own header, never in the URL (logs)."""
        headers = {"accept": "application/json", "user-agent": _USER_AGENT}
        if self.api_key:
            headers[_KEY_HEADERS[self.plan]] = self.api_key
        return headers


# --------------------------------------------------------------------------- errors


class CoinGeckoError(PriceUnavailableError):
    """Anything that kept CoinGecko from pricing; the engine reads it as "no prices"."""


class CoinGeckoTimeoutError(CoinGeckoError):
    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        super().__init__(
            f"price feed unavailable: CoinGecko did not answer within {timeout_seconds:g} s"
        )


class CoinGeckoRateLimitedError(CoinGeckoError):
    """HTTP 429; `retry_after_seconds` is the server's hint, if it gave one."""

    status_code = 429

    def __init__(self, retry_after_seconds: float | None = None) -> None:
        self.retry_after_seconds = retry_after_seconds
        message = "CoinGecko rate limit (HTTP 429)"
        if retry_after_seconds is not None:
            message += f"; retry after {retry_after_seconds:g} s"
        super().__init__(message)


class CoinGeckoHTTPError(CoinGeckoError):
    def __init__(self, status_code: int, detail: str = "") -> None:
        self.status_code = status_code
        message = f"CoinGecko answered HTTP {status_code}"
        if status_code in (401, 403):
            message += " (check COINGECKO_API_KEY and COINGECKO_API_PLAN)"
        if detail:
            message += f": {detail}"
        super().__init__(message)


class CoinGeckoMalformedError(CoinGeckoError):
    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"CoinGecko sent a response that is not the documented JSON: {problem}")


class CoinGeckoConnectionError(CoinGeckoError):
    def __init__(self, host: str, detail: str) -> None:
        self.host = host
        super().__init__(f"cannot reach CoinGecko at {host}: {detail}")


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class SimplePrice:
    usd: Decimal
    change_24h_percent: Decimal | None
    last_updated_at: datetime


class CoinGeckoClient:
    """Thin async CoinGecko client: one call = one request, strict shapes, typed errors."""

    def __init__(
        self, config: CoinGeckoConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport

    async def simple_price(self, ids: Sequence[str]) -> dict[str, SimplePrice]:
        """USD price of each coin id; ids CoinGecko does not return are absent from the result."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        body = await self._get(
            "/simple/price",
            {
                "ids": ",".join(wanted),
                "vs_currencies": "usd",
                "include_24hr_change": "true",
                "include_last_updated_at": "true",
            },
        )
        return _parse_simple(body, {i: i for i in wanted})

    async def token_price(self, platform: str, addresses: Sequence[str]) -> dict[str, SimplePrice]:
        """USD price of each contract on `platform`, keyed by lower-cased address."""
        wanted = list(dict.fromkeys(a.lower() for a in addresses))
        if not wanted:
            return {}
        body = await self._get(
            f"/simple/token_price/{quote(platform, safe='')}",
            {
                "contract_addresses": ",".join(wanted),
                "vs_currencies": "usd",
                "include_24hr_change": "true",
                "include_last_updated_at": "true",
            },
        )
        if not isinstance(body, dict):
            raise CoinGeckoMalformedError(f"expected a JSON object, got {_kind(body)}")
        lowered = {str(k).lower(): v for k, v in body.items()}
        return _parse_simple(lowered, {a: a for a in wanted})

    async def market_chart(self, coin_id: str, days: int) -> list[tuple[datetime, Decimal]]:
        """(time, USD price) points, oldest first as CoinGecko sends them."""
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        body = await self._get(
            f"/coins/{quote(coin_id, safe='')}/market_chart",
            {"vs_currency": "usd", "days": str(days)},
        )
        if not isinstance(body, dict):
            raise CoinGeckoMalformedError(f"expected a JSON object, got {_kind(body)}")
        points = body.get("prices")
        if not isinstance(points, list):
            raise CoinGeckoMalformedError(
                f"market_chart for {coin_id}: 'prices' is {_kind(points)}, expected a list"
            )
        result: list[tuple[datetime, Decimal]] = []
        for index, point in enumerate(points):
            where = f"market_chart for {coin_id}: prices[{index}]"
            if not isinstance(point, list) or len(point) != 2:
                raise CoinGeckoMalformedError(f"{where} is not a [ms, price] pair")
            moment = _timestamp(point[0], where, milliseconds=True)
            value = _price(_number(point[1], f"{where} price"), f"{where} price")
            if value <= 0:
                raise CoinGeckoMalformedError(f"{where} price {point[1]} is not positive")
            result.append((moment, value))
        return result

    async def _get(self, path: str, params: Mapping[str, str]) -> Any:
        """One GET, decoded with Decimal numbers; every failure becomes a typed error."""
        config = self.config
        try:
            async with httpx.AsyncClient(
                base_url=config.base_url + "/",
                headers=config.headers(),
                timeout=httpx.Timeout(config.timeout_seconds),
                transport=self._transport,
                follow_redirects=False,
            ) as client:
                # The per-phase httpx timeout does not bound a server that trickles bytes.
                response = await asyncio.wait_for(
                    client.get(path.lstrip("/"), params=params), config.timeout_seconds
                )
        except (httpx.TimeoutException, TimeoutError):
            raise CoinGeckoTimeoutError(config.timeout_seconds) from None
        except httpx.TransportError as exc:
            raise CoinGeckoConnectionError(config.host, _transport_detail(exc)) from exc
        except httpx.DecodingError as exc:  # a Content-Encoding the body does not match
            raise CoinGeckoMalformedError(f"body cannot be decompressed ({exc})") from None
        except httpx.InvalidURL as exc:
            raise CoinGeckoConnectionError(config.host, f"invalid URL ({exc})") from exc
        return _decode(response)


def _transport_detail(exc: BaseException) -> str:
    """The OS's words ("Connection refused", "Name or service not known") over httpx's."""
    summary = str(exc) or type(exc).__name__
    cause: BaseException | None = exc
    for _ in range(10):
        if cause is None:
            break
        if isinstance(cause, OSError) and cause.strerror:
            code = cause.errno
            words = os.strerror(code) if isinstance(code, int) and code > 0 else cause.strerror
            return summary if words in summary else f"{words} ({summary})"
        cause = cause.__cause__ or cause.__context__
    return summary


def _decode(response: httpx.Response) -> Any:
    status = response.status_code
    if status == 429:
        raise CoinGeckoRateLimitedError(_retry_after(response.headers.get("retry-after")))
    if not 200 <= status < 300:
        raise CoinGeckoHTTPError(status, _error_detail(response))
    try:
        text = response.text
    except UnicodeError as exc:
        raise CoinGeckoMalformedError(f"body is not text in its declared charset ({exc})") from None
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        snippet = text[:80].replace("\n", " ")
        raise CoinGeckoMalformedError(f"body is not JSON ({exc}): {snippet!r}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a price")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent/odd."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _error_detail(response: httpx.Response) -> str:
    """CoinGecko's own error message, if the body carries one (it often does not)."""
    try:
        body = json.loads(response.text, parse_float=Decimal)
    except ValueError:  # UnicodeError included: an undecodable body carries no message
        return ""
    if isinstance(body, dict):
        status = body.get("status")
        if isinstance(status, dict) and isinstance(status.get("error_message"), str):
            return str(status["error_message"])[:200]
        if isinstance(body.get("error"), str):
            return str(body["error"])[:200]
    return ""


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        Decimal: "a number",
    }.get(type(value), type(value).__name__)


def _number(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise CoinGeckoMalformedError(f"{where} is {_kind(value)} ({value!r}), not a number")
    number = Decimal(value)
    if not number.is_finite():
        raise CoinGeckoMalformedError(f"{where} is not finite")
    return number


def _price(value: Decimal, where: str) -> Decimal:
    """`value` at the ledger's price precision; too large for its columns is malformed."""
    if abs(value) >= MAX_PRICE_USD:
        raise CoinGeckoMalformedError(f"{where} ({value}) is too large to be a price")
    return money.price(value)


def _change(value: object, where: str) -> Decimal:
    number = _number(value, where)
    if abs(number) >= MAX_CHANGE_PERCENT:
        raise CoinGeckoMalformedError(f"{where} ({number}) is too large to be a change")
    return money.ratio(number)


def _timestamp(value: object, where: str, *, milliseconds: bool = False) -> datetime:
    number = _number(value, where)
    seconds = number / 1000 if milliseconds else number
    try:
        if seconds <= 0:
            raise ValueError("not positive")
        return datetime.fromtimestamp(float(seconds), UTC)
    except (ValueError, OverflowError, OSError, InvalidOperation):
        raise CoinGeckoMalformedError(f"{where} ({number}) is not a valid time") from None


def _parse_simple(body: object, wanted: Mapping[str, str]) -> dict[str, SimplePrice]:
    """`{key: {"usd": .., "usd_24h_change": .., "last_updated_at": ..}}` for the wanted keys."""
    if not isinstance(body, dict):
        raise CoinGeckoMalformedError(f"expected a JSON object, got {_kind(body)}")
    result: dict[str, SimplePrice] = {}
    for key in wanted:
        entry = body.get(key)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise CoinGeckoMalformedError(f"entry for {key} is {_kind(entry)}, not an object")
        if "usd" not in entry:
            raise CoinGeckoMalformedError(f"entry for {key} has no 'usd' price")
        raw_usd = _number(entry["usd"], f"'usd' of {key}")
        if raw_usd < 0:
            raise CoinGeckoMalformedError(f"'usd' of {key} is negative ({raw_usd})")
        usd = _price(raw_usd, f"'usd' of {key}")
        if usd == 0:
            # CoinGecko's way of saying it has no price (or one below the ledger's smallest
            # unit, which the ledger cannot trade at either): report it missing.
            continue
        change_raw = entry.get("usd_24h_change")
        change = None if change_raw is None else _change(change_raw, f"'usd_24h_change' of {key}")
        if "last_updated_at" not in entry:
            raise CoinGeckoMalformedError(f"entry for {key} has no 'last_updated_at'")
        updated = _timestamp(entry["last_updated_at"], f"'last_updated_at' of {key}")
        result[key] = SimplePrice(usd, change, updated)
    return result


# --------------------------------------------------------------------------- price source


def _run_sync(func: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine from sync code, even on a thread whose event loop is running.

    async_to_sync refuses a thread with a running loop, so there the call moves to a worker
    thread (the caller blocks either way: this is a synchronous API).
    """

    async def call() -> _T:
        return await func()

    runner = async_to_sync(call)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return runner()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="coingecko") as pool:
        return pool.submit(runner).result()


@dataclass(frozen=True)
class _ByContract:
    platform: str
    address: str


def _platform_of(token: Token) -> str | None:
    """The CoinGecko platform of the chain holding `token` (testnets use their mainnet twin)."""
    for chain in CHAINS.values():
        if token in chain.tokens.values():
            if chain.coingecko_platform:
                return chain.coingecko_platform
            twin = CHAINS.get(chain.price_twin_chain_id or -1)
            if twin is not None and twin.coingecko_platform:
                return twin.coingecko_platform
    return None


class CoinGeckoSource:
    """PriceSource over CoinGecko: every known token in one bulk request per fetch."""

    name = "coingecko"

    def __init__(
        self,
        client: CoinGeckoClient,
        tokens: Sequence[Token],
        *,
        platforms: Mapping[str, str] | None = None,
    ) -> None:
        """`platforms` maps a contract address to its CoinGecko platform for tokens without a
        coingecko_id that are not in the chain registry."""
        self.client = client
        overrides = {a.lower(): p for a, p in (platforms or {}).items()}
        self._ids: dict[str, str] = {}
        self._contracts: dict[str, _ByContract] = {}
        self._unpriceable: dict[str, str] = {}
        for token in tokens:
            symbol = token.price_symbol.upper()
            if token.coingecko_id:
                known = self._ids.get(symbol)
                if known is not None and known != token.coingecko_id:
                    raise ValueError(
                        f"price symbol {symbol} maps to two CoinGecko ids: {known} and "
                        f"{token.coingecko_id} ({token.symbol})"
                    )
                self._ids[symbol] = token.coingecko_id
                continue
            platform = overrides.get(token.address.lower()) or _platform_of(token)
            if platform is None:
                self._unpriceable.setdefault(
                    symbol,
                    f"{token.symbol} has no CoinGecko id and its chain no CoinGecko platform",
                )
            else:
                self._contracts.setdefault(symbol, _ByContract(platform, token.address.lower()))
        for symbol in self._ids:
            self._contracts.pop(symbol, None)
            self._unpriceable.pop(symbol, None)
        for symbol in self._contracts:
            self._unpriceable.pop(symbol, None)

    def symbols_available(self) -> list[str]:
        return sorted({*self._ids, *self._contracts})

    def fetch(self, symbols: Sequence[str], now: datetime) -> PriceSnapshot:
        """Quotes for `symbols`, from one request covering every token this source knows."""
        by_id, by_contract = _run_sync(self._fetch_everything)
        prices: dict[str, PriceQuote] = {}
        unavailable: dict[str, str] = {}
        for symbol in symbols:
            key = symbol.upper()
            found: SimplePrice | None
            if key in self._ids:
                coin_id = self._ids[key]
                found = by_id.get(coin_id)
                missing = f"CoinGecko returned no price for {symbol} (id {coin_id})"
            elif key in self._contracts:
                contract = self._contracts[key]
                found = by_contract.get(contract)
                missing = (
                    f"CoinGecko returned no price for {symbol} "
                    f"(contract {contract.address} on {contract.platform})"
                )
            else:
                found = None
                missing = self._unpriceable.get(
                    key, f"no CoinGecko id known for {symbol} (not in this source's tokens)"
                )
            if found is None:
                unavailable[symbol] = missing
                continue
            prices[symbol] = PriceQuote(
                symbol=symbol,
                price_usd=found.usd,
                timestamp=found.last_updated_at,
                source=self.name,
                change_24h_percent=found.change_24h_percent,
            )
        return PriceSnapshot(
            timestamp=now, source=self.name, prices=prices, unavailable=unavailable
        )

    def fetch_all(self, now: datetime) -> PriceSnapshot:
        """Everything this source can price, so one upstream call can serve every bot."""
        return self.fetch(self.symbols_available(), now)

    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        """Nothing: a live API keeps no local history; the app warms up from its database."""
        return []

    async def _fetch_everything(
        self,
    ) -> tuple[dict[str, SimplePrice], dict[_ByContract, SimplePrice]]:
        ids = list(dict.fromkeys(self._ids.values()))
        per_platform: dict[str, list[str]] = {}
        for contract in self._contracts.values():
            per_platform.setdefault(contract.platform, []).append(contract.address)
        platforms = sorted(per_platform)
        results = await asyncio.gather(
            self.client.simple_price(ids),
            *(self.client.token_price(p, per_platform[p]) for p in platforms),
        )
        by_contract: dict[_ByContract, SimplePrice] = {}
        for platform, found in zip(platforms, results[1:], strict=True):
            for address, price in found.items():
                by_contract[_ByContract(platform, address)] = price
        return results[0], by_contract
