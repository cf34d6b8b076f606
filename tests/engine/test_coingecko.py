"""The real CoinGecko client and source, over real HTTP, against a loopback fake of the API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import httpx
import pytest

from paper_trading.engine.chains import BASE, CHAINS, ETHEREUM, Token
from paper_trading.engine.prices.coingecko import (
    DEMO_BASE_URL,
    PRO_BASE_URL,
    CoinGeckoClient,
    CoinGeckoConfig,
    CoinGeckoConnectionError,
    CoinGeckoHTTPError,
    CoinGeckoMalformedError,
    CoinGeckoRateLimitedError,
    CoinGeckoSource,
    CoinGeckoTimeoutError,
    Plan,
    SimplePrice,
)
from paper_trading.engine.prices.feed import PriceFeedService, PriceUnavailableError
from tests.fakes.coingecko import FakeCoinGecko

NOW = datetime.now(UTC).replace(microsecond=0)
UPDATED = datetime(2026, 1, 5, 12, 0, 7, tzinfo=UTC)
ALL_TOKENS = [t for chain in CHAINS.values() for t in chain.tokens.values()]


@pytest.fixture
def fake() -> Iterator[FakeCoinGecko]:
    with FakeCoinGecko() as server:
        yield server


def _client(
    fake: FakeCoinGecko,
    *,
    api_key: str | None = None,
    plan: Plan = "demo",
    timeout_seconds: float = 10.0,
) -> CoinGeckoClient:
    return CoinGeckoClient(CoinGeckoConfig(fake.url, api_key, plan, timeout_seconds))


def _price_everything(fake: FakeCoinGecko) -> None:
    ids = {t.coingecko_id for t in ALL_TOKENS}
    for n, coin_id in enumerate(sorted(ids), start=1):
        fake.set_price(coin_id, Decimal(n) + Decimal("0.25"), change=Decimal("1.5"))
    fake.set_price("weth", Decimal("3881.03"), change=Decimal("-1.2345"), updated_at=UPDATED)


# ---------------------------------------------------------------- configuration


def test_from_env_defaults_to_the_public_demo_host_without_key() -> None:
    config = CoinGeckoConfig.from_env({})
    assert config == CoinGeckoConfig(DEMO_BASE_URL, None, "demo", 10.0)
    assert "x-cg-demo-api-key" not in config.headers()
    assert "x-cg-pro-api-key" not in config.headers()


def test_from_env_pro_plan_uses_the_pro_host_and_header() -> None:
    config = CoinGeckoConfig.from_env(
        {
            "COINGECKO_API_PLAN": "PRO",
            "COINGECKO_API_KEY": "k-pro",
            "COINGECKO_TIMEOUT_SECONDS": "3",
        }
    )
    assert config.base_url == PRO_BASE_URL
    assert config.plan == "pro"
    assert config.timeout_seconds == 3.0
    assert config.headers()["x-cg-pro-api-key"] == "k-pro"
    assert "x-cg-demo-api-key" not in config.headers()


def test_from_env_url_override_wins_and_demo_key_uses_demo_header() -> None:
    config = CoinGeckoConfig.from_env(
        {"COINGECKO_API_URL": "http://127.0.0.1:9/api/v3/", "COINGECKO_API_KEY": "k-demo"}
    )
    assert config.base_url == "http://127.0.0.1:9/api/v3"
    assert config.headers()["x-cg-demo-api-key"] == "k-demo"
    pro = CoinGeckoConfig.from_env(
        {"COINGECKO_API_URL": "http://proxy/api/v3", "COINGECKO_API_PLAN": "pro"}
    )
    assert pro.base_url == "http://proxy/api/v3"


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"COINGECKO_API_PLAN": "enterprise"}, "COINGECKO_API_PLAN"),
        ({"COINGECKO_TIMEOUT_SECONDS": "soon"}, "COINGECKO_TIMEOUT_SECONDS"),
        ({"COINGECKO_TIMEOUT_SECONDS": "0"}, "COINGECKO_TIMEOUT_SECONDS"),
    ],
)
def test_from_env_rejects_bad_values_naming_the_variable(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ValueError, match=variable):
        CoinGeckoConfig.from_env(environ)


# ---------------------------------------------------------------- client, happy paths


@pytest.mark.parametrize(
    ("plan", "header", "other"),
    [
        ("demo", "x-cg-demo-api-key", "x-cg-pro-api-key"),
        ("pro", "x-cg-pro-api-key", "x-cg-demo-api-key"),
    ],
)
def test_simple_price_request_shape_and_key_header(
    fake: FakeCoinGecko, plan: Plan, header: str, other: str
) -> None:
    fake.set_price("weth", Decimal("3881.03"), change=Decimal("-1.2"), updated_at=UPDATED)
    fake.require_api_key("secret", plan=plan)
    client = _client(fake, api_key="secret", plan=plan)

    result = asyncio.run(client.simple_price(["weth", "wrapped-bitcoin", "weth"]))

    [request] = fake.requests
    assert request.path == "/api/v3/simple/price"
    assert request.query == {
        "ids": "weth,wrapped-bitcoin",
        "vs_currencies": "usd",
        "include_24hr_change": "true",
        "include_last_updated_at": "true",
    }
    assert request.headers[header] == "secret"
    assert other not in request.headers
    assert result == {"weth": SimplePrice(Decimal("3881.03"), Decimal("-1.2"), UPDATED)}


def test_prices_stay_exact_decimals(fake: FakeCoinGecko) -> None:
    fake.set_price("weth", Decimal("3881.03"), change=Decimal("0.123456789"), updated_at=UPDATED)
    fake.set_price("shib", Decimal("0.000012345678901234"), updated_at=UPDATED)
    fake.set_price("wrapped-bitcoin", Decimal("97123.456789012345678"), updated_at=UPDATED)

    result = asyncio.run(_client(fake).simple_price(["weth", "shib", "wrapped-bitcoin"]))

    assert result["weth"].usd == Decimal("3881.03")
    assert isinstance(result["weth"].usd, Decimal)
    assert result["shib"].usd == Decimal("0.000012345678901234")
    assert result["wrapped-bitcoin"].usd == Decimal("97123.456789012345678")
    assert result["weth"].change_24h_percent == Decimal("0.1235")
    assert result["shib"].change_24h_percent is None
    assert result["weth"].last_updated_at == UPDATED
    assert result["weth"].last_updated_at.tzinfo is UTC


def test_absent_ids_are_simply_missing(fake: FakeCoinGecko) -> None:
    fake.set_price("weth", Decimal("3000"))
    result = asyncio.run(_client(fake).simple_price(["weth", "no-such-coin"]))
    assert set(result) == {"weth"}


def test_token_price_request_and_lowercased_keys(fake: FakeCoinGecko) -> None:
    weth = BASE.token("WETH").address
    usdc = BASE.token("USDC").address
    fake.set_token_price("base", weth, Decimal("3000.5"), change=Decimal("2"), updated_at=UPDATED)

    result = asyncio.run(_client(fake).token_price("base", [weth, usdc]))

    [request] = fake.requests
    assert request.path == "/api/v3/simple/token_price/base"
    assert request.query["contract_addresses"] == f"{weth.lower()},{usdc.lower()}"
    assert request.query["vs_currencies"] == "usd"
    assert request.query["include_24hr_change"] == "true"
    assert request.query["include_last_updated_at"] == "true"
    assert result == {weth.lower(): SimplePrice(Decimal("3000.5"), Decimal("2"), UPDATED)}


def test_market_chart_parsed(fake: FakeCoinGecko) -> None:
    t0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
    points = [(t0, Decimal("3000.1")), (t0 + timedelta(hours=1), Decimal("3010.25"))]
    fake.set_chart("weth", points)

    result = asyncio.run(_client(fake).market_chart("weth", 2))

    [request] = fake.requests
    assert request.path == "/api/v3/coins/weth/market_chart"
    assert request.query == {"vs_currency": "usd", "days": "2"}
    assert result == points


def test_market_chart_unknown_coin_is_an_http_error(fake: FakeCoinGecko) -> None:
    with pytest.raises(CoinGeckoHTTPError, match="HTTP 404: coin not found"):
        asyncio.run(_client(fake).market_chart("nope", 1))


# ---------------------------------------------------------------- client, failure modes


def test_slow_answer_is_a_timeout_with_a_readable_message(fake: FakeCoinGecko) -> None:
    fake.set_price("weth", Decimal("3000"))
    fake.slow(5)
    with pytest.raises(CoinGeckoTimeoutError) as caught:
        asyncio.run(_client(fake, timeout_seconds=0.2).simple_price(["weth"]))
    assert str(caught.value) == ("price feed unavailable: CoinGecko did not answer within 0.2 s")
    assert isinstance(caught.value, PriceUnavailableError)
    assert str(CoinGeckoTimeoutError(10.0)).endswith("within 10 s")


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(None, None), (30, 30.0), ("1.5", 1.5), ("not a date", None)],
)
def test_rate_limited(
    fake: FakeCoinGecko, retry_after: str | int | None, expected: float | None
) -> None:
    fake.rate_limited(retry_after=retry_after)
    with pytest.raises(CoinGeckoRateLimitedError, match=r"CoinGecko rate limit \(HTTP 429\)") as c:
        asyncio.run(_client(fake).simple_price(["weth"]))
    assert c.value.retry_after_seconds == expected
    assert len(fake.requests) == 1, "no hidden retries"


def test_rate_limited_with_an_http_date(fake: FakeCoinGecko) -> None:
    fake.rate_limited(retry_after=format_datetime(datetime.now(UTC) + timedelta(seconds=60), True))
    with pytest.raises(CoinGeckoRateLimitedError) as caught:
        asyncio.run(_client(fake).simple_price(["weth"]))
    assert caught.value.retry_after_seconds is not None
    assert 50 <= caught.value.retry_after_seconds <= 61


@pytest.mark.parametrize("status", [500, 503])
def test_server_error(fake: FakeCoinGecko, status: int) -> None:
    fake.server_error(status)
    with pytest.raises(CoinGeckoHTTPError) as caught:
        asyncio.run(_client(fake).simple_price(["weth"]))
    assert caught.value.status_code == status
    assert str(caught.value) == f"CoinGecko answered HTTP {status}"
    assert len(fake.requests) == 1, "no hidden retries"


def test_wrong_api_key_is_reported_with_a_hint(fake: FakeCoinGecko) -> None:
    fake.require_api_key("right")
    with pytest.raises(CoinGeckoHTTPError, match=r"HTTP 401 .*COINGECKO_API_KEY.*API Key Missing"):
        asyncio.run(_client(fake, api_key="wrong").simple_price(["weth"]))


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("not_json", "body is not JSON"),
        ("not_object", "expected a JSON object, got a list"),
        ("missing_usd", "entry for weth has no 'usd' price"),
        ("string_price", "'usd' of weth is a string"),
        ("truncated", "body is not JSON"),
        ("huge_price", "'usd' of weth (1E+400) is too large to be a price"),
        ("huge_change", "'usd_24h_change' of weth (1E+400) is too large to be a change"),
        ("bad_gzip", "body cannot be decompressed"),
        ("bad_charset", "body is not text in its declared charset"),
    ],
)
def test_garbage_is_malformed(fake: FakeCoinGecko, kind: str, problem: str) -> None:
    fake.garbage(kind)  # type: ignore[arg-type]
    with pytest.raises(CoinGeckoMalformedError) as caught:
        asyncio.run(_client(fake).simple_price(["weth"]))
    message = str(caught.value)
    assert message.startswith("CoinGecko sent a response that is not the documented JSON: ")
    assert problem in message


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"weth": {"usd": true, "last_updated_at": 1}}', "'usd' of weth is a boolean"),
        ('{"weth": {"usd": NaN, "last_updated_at": 1}}', "body is not JSON"),
        ('{"weth": {"usd": -1, "last_updated_at": 1}}', "'usd' of weth is negative"),
        ('{"weth": {"usd": 1}}', "entry for weth has no 'last_updated_at'"),
        ('{"weth": {"usd": 1, "last_updated_at": "x"}}', "'last_updated_at' of weth is a string"),
        ('{"weth": {"usd": 1, "last_updated_at": -5}}', "is not a valid time"),
        ('{"weth": {"usd": 1, "usd_24h_change": "x", "last_updated_at": 1}}', "usd_24h_change"),
        ('{"weth": [1]}', "entry for weth is a list, not an object"),
    ],
)
def test_strict_shape_validation(body: str, problem: str) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=body))
    client = CoinGeckoClient(CoinGeckoConfig(), transport=transport)
    with pytest.raises(CoinGeckoMalformedError, match=problem.replace("(", r"\(")):
        asyncio.run(client.simple_price(["weth"]))


def test_zero_price_means_no_price() -> None:
    body = json.dumps({"weth": {"usd": 0, "last_updated_at": 1732000000}})
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=body))
    client = CoinGeckoClient(CoinGeckoConfig(), transport=transport)
    assert asyncio.run(client.simple_price(["weth"])) == {}


def test_a_price_below_the_ledgers_smallest_unit_is_no_price(fake: FakeCoinGecko) -> None:
    fake.garbage("tiny_price")  # 1e-30: zero at 18 decimal places, never a price to trade at
    assert asyncio.run(_client(fake).simple_price(["weth"])) == {}


def test_an_error_status_with_an_undecodable_body_is_still_that_status() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            503, content=b"{}", headers={"content-type": "application/json; charset=utf-16"}
        )
    )
    client = CoinGeckoClient(CoinGeckoConfig(), transport=transport)
    with pytest.raises(CoinGeckoHTTPError) as caught:
        asyncio.run(client.simple_price(["weth"]))
    assert str(caught.value) == "CoinGecko answered HTTP 503"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"market_caps": []}', "'prices' is null, expected a list"),
        ('{"prices": [[1, 2, 3]]}', r"prices\[0\] is not a \[ms, price\] pair"),
        ('{"prices": [[1732000000000, "x"]]}', r"prices\[0\] price is a string"),
        ('{"prices": [[1732000000000, 1e30]]}', r"prices\[0\] price \(1E\+30\) is too large"),
        ('{"prices": [[1732000000000, 1e-30]]}', r"prices\[0\] price 1E-30 is not positive"),
    ],
)
def test_market_chart_shape_validation(body: str, problem: str) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=body))
    client = CoinGeckoClient(CoinGeckoConfig(), transport=transport)
    with pytest.raises(CoinGeckoMalformedError, match=problem):
        asyncio.run(client.market_chart("weth", 1))


def test_connection_refused_then_back_up(fake: FakeCoinGecko) -> None:
    fake.set_price("weth", Decimal("3000"))
    client = _client(fake)
    fake.down()
    with pytest.raises(CoinGeckoConnectionError) as caught:
        asyncio.run(client.simple_price(["weth"]))
    assert str(caught.value).startswith(
        f"cannot reach CoinGecko at 127.0.0.1:{fake.port}: Connection refused"
    )
    fake.up()
    assert asyncio.run(client.simple_price(["weth"]))["weth"].usd == Decimal("3000")


# ---------------------------------------------------------------- source


def test_fetch_is_one_request_for_every_token(fake: FakeCoinGecko) -> None:
    _price_everything(fake)
    source = CoinGeckoSource(_client(fake), ALL_TOKENS)

    snapshot = source.fetch(["ETH", "BTC"], NOW)

    [request] = fake.requests
    assert request.path == "/api/v3/simple/price"
    assert sorted(request.query["ids"].split(",")) == sorted({t.coingecko_id for t in ALL_TOKENS})
    assert snapshot.source == "coingecko"
    assert snapshot.timestamp == NOW
    assert set(snapshot.prices) == {"ETH", "BTC"}
    eth = snapshot.prices["ETH"]
    assert eth.price_usd == Decimal("3881.03")
    assert eth.timestamp == UPDATED
    assert eth.change_24h_percent == Decimal("-1.2345")
    assert eth.source == "coingecko"
    assert snapshot.unavailable == {}


def test_missing_token_is_unavailable_with_the_reason(fake: FakeCoinGecko) -> None:
    _price_everything(fake)
    fake.omit("uniswap")
    source = CoinGeckoSource(_client(fake), list(ETHEREUM.tokens.values()))

    snapshot = source.fetch(["ETH", "UNI", "DOGE"], NOW)

    assert set(snapshot.prices) == {"ETH"}
    assert snapshot.unavailable["UNI"] == "CoinGecko returned no price for UNI (id uniswap)"
    assert "DOGE" in snapshot.unavailable["DOGE"]
    assert len(fake.requests) == 1


def test_fetch_all_and_symbols_available(fake: FakeCoinGecko) -> None:
    _price_everything(fake)
    source = CoinGeckoSource(_client(fake), list(BASE.tokens.values()))
    assert source.symbols_available() == ["AAVE", "BTC", "DAI", "ETH", "LINK", "UNI", "USDC"]

    snapshot = source.fetch_all(NOW)

    assert sorted(snapshot.prices) == source.symbols_available()
    assert len(fake.requests) == 1
    assert source.history("ETH", NOW, 10) == []


def test_tokens_without_id_use_one_token_price_call_per_platform(fake: FakeCoinGecko) -> None:
    _price_everything(fake)
    pepe = Token("PEPE", "0xAAAA000000000000000000000000000000000001", 18, "", "PEPE")
    toshi = Token("TOSHI", "0xBBBB000000000000000000000000000000000002", 18, "", "TOSHI")
    degen = Token("DEGEN", "0xCCCC000000000000000000000000000000000003", 18, "", "DEGEN")
    orphan = Token("ORPHAN", "0xDDDD000000000000000000000000000000000004", 18, "", "ORPHAN")
    fake.set_token_price("ethereum", pepe.address, Decimal("0.00001234"), updated_at=UPDATED)
    fake.set_token_price("base", toshi.address, Decimal("0.0005"), updated_at=UPDATED)
    source = CoinGeckoSource(
        _client(fake),
        [ETHEREUM.token("WETH"), pepe, toshi, degen, orphan],
        platforms={pepe.address: "ethereum", toshi.address: "base", degen.address: "base"},
    )

    snapshot = source.fetch(["ETH", "PEPE", "TOSHI", "DEGEN", "ORPHAN"], NOW)

    endpoints = sorted(r.endpoint for r in fake.requests)
    assert endpoints == [
        "/simple/price",
        "/simple/token_price/base",
        "/simple/token_price/ethereum",
    ]
    base_call = next(r for r in fake.requests if r.endpoint.endswith("/base"))
    assert (
        base_call.query["contract_addresses"] == f"{toshi.address.lower()},{degen.address.lower()}"
    )
    assert snapshot.prices["PEPE"].price_usd == Decimal("0.00001234")
    assert snapshot.prices["TOSHI"].price_usd == Decimal("0.0005")
    assert snapshot.unavailable["DEGEN"] == (
        f"CoinGecko returned no price for DEGEN (contract {degen.address.lower()} on base)"
    )
    assert "no CoinGecko id" in snapshot.unavailable["ORPHAN"]
    assert "ORPHAN" not in source.symbols_available()


def test_source_errors_propagate_typed(fake: FakeCoinGecko) -> None:
    source = CoinGeckoSource(_client(fake), ALL_TOKENS)
    fake.server_error(503)
    with pytest.raises(CoinGeckoHTTPError, match="CoinGecko answered HTTP 503"):
        source.fetch(["ETH"], NOW)
    fake.rate_limited(retry_after=7)
    with pytest.raises(PriceUnavailableError, match="rate limit"):
        source.fetch(["ETH"], NOW)


def test_stale_prices_are_refused_by_the_feed_service(fake: FakeCoinGecko) -> None:
    _price_everything(fake)
    fake.stale(timedelta(hours=3))
    feed = PriceFeedService(CoinGeckoSource(_client(fake), ALL_TOKENS), timedelta(minutes=10))

    snapshot = feed.get_prices(["ETH"], datetime.now(UTC))

    assert snapshot.prices == {}
    assert snapshot.unavailable["ETH"].startswith("stale: ")


def test_prices_dated_in_the_future_are_refused_by_the_feed_service(fake: FakeCoinGecko) -> None:
    fake.garbage("future_timestamp")  # a plausible price, dated a year ahead
    feed = PriceFeedService(CoinGeckoSource(_client(fake), ALL_TOKENS), timedelta(minutes=10))

    snapshot = feed.get_prices(["ETH"], datetime.now(UTC))

    assert snapshot.prices == {}
    assert snapshot.unavailable["ETH"].startswith("not trusted: last price is dated ")


def test_fetch_works_inside_a_running_event_loop(fake: FakeCoinGecko) -> None:
    _price_everything(fake)
    source = CoinGeckoSource(_client(fake), ALL_TOKENS)

    async def main() -> tuple[Decimal, Decimal]:
        direct = source.fetch(["ETH"], NOW)  # blocks this loop, but must not fail
        threaded = await asyncio.to_thread(source.fetch, ["ETH"], NOW)
        return direct.prices["ETH"].price_usd, threaded.prices["ETH"].price_usd

    assert asyncio.run(main()) == (Decimal("3881.03"), Decimal("3881.03"))
    assert len(fake.requests) == 2


def test_conflicting_ids_for_one_price_symbol_are_refused() -> None:
    a = Token("X1", "0x1", 18, "x-one", "X")
    b = Token("X2", "0x2", 18, "x-two", "X")
    with pytest.raises(ValueError, match="two CoinGecko ids"):
        CoinGeckoSource(CoinGeckoClient(CoinGeckoConfig()), [a, b])
