"""Live gas figures: the JSON-RPC oracle against a loopback node, and the simulator using it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from eth_hash.auto import keccak

from paper_trading.engine.chains import ARBITRUM, BASE, ETHEREUM
from paper_trading.engine.dex.gas import GasModel, LiveGasFigures
from paper_trading.engine.dex.quote import Side
from paper_trading.engine.dex.rpc import (
    GAS_PRICE_ORACLE,
    GET_L1_FEE_SELECTOR,
    JsonRpcGasOracle,
    RpcError,
    encode_get_l1_fee,
    representative_swap_tx,
    rpc_url_for,
)
from paper_trading.engine.dex.simulator import DexSimulator
from tests.fakes.jsonrpc import FakeNode

NOW = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
ETH_USD = Decimal(3000)
#: Next block's base fee is the last entry: 0.005123457 gwei.
BASE_FEES_WEI = [4_900_000, 5_000_000, 5_100_000, 5_050_000, 5_000_001] + [5_123_457] * 6
#: 50th-percentile tips sorted: ..., 1_000_001, 1_000_002, ...: median floors to 1_000_001 wei.
REWARDS_WEI = [
    [1, 900_000, 9_000_000],
    [1, 1_000_002, 9_000_000],
    [1, 5_000_000, 9_000_000],
    [1, 0, 9_000_000],
    [1, 1_000_001, 9_000_000],
    [1, 2_000_000, 9_000_000],
    [1, 800_000, 9_000_000],
    [1, 3_000_000, 9_000_000],
    [1, 700_000, 9_000_000],
    [1, 4_000_000, 9_000_000],
]
L1_FEE_WEI = 12_345_678_901


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def node() -> Iterator[FakeNode]:
    with FakeNode() as fake:
        fake.base_fees_wei = list(BASE_FEES_WEI)
        fake.rewards_wei = [list(row) for row in REWARDS_WEI]
        fake.l1_fee_wei = L1_FEE_WEI
        yield fake


def _keyed_url(node: FakeNode) -> str:
    return f"{node.url}v2/SECRETKEY0123456789?apikey=ALSOSECRET42"


def test_base_fee_tip_and_l1_fee_parsed_exactly(node: FakeNode) -> None:
    with JsonRpcGasOracle(node.url, BASE) as oracle:
        figures = oracle.figures()
    assert figures == LiveGasFigures(
        base_fee_gwei=Decimal("0.005123457"),
        priority_fee_gwei=Decimal("0.001000001"),
        l1_fee_native=Decimal("0.000000012345678901"),
    )
    assert node.methods() == ["eth_feeHistory", "eth_call"]
    assert node.calls[0][1] == ["0xa", "latest", [10, 50, 90]]


def test_odd_block_count_takes_the_middle_tip(node: FakeNode) -> None:
    node.base_fees_wei = [7, 8, 9, 10]
    node.rewards_wei = [[0, 30, 0], [0, 10, 0], [0, 20, 0]]
    with JsonRpcGasOracle(node.url, ETHEREUM) as oracle:
        figures = oracle.figures()
    assert figures == LiveGasFigures(Decimal("0.00000001"), Decimal("0.00000002"), None)
    assert node.methods() == ["eth_feeHistory"]  # no L1 data fee outside the OP stack


def test_arbitrum_ignores_the_tip(node: FakeNode) -> None:
    with JsonRpcGasOracle(node.url, ARBITRUM) as oracle:
        figures = oracle.figures()
    assert figures.priority_fee_gwei == 0
    assert figures.base_fee_gwei == Decimal("0.005123457")
    assert figures.l1_fee_native is None
    assert node.methods() == ["eth_feeHistory"]


def test_selector_is_keccak_of_the_signature() -> None:
    digest = keccak(b"getL1Fee(bytes)")
    assert digest[:4] == GET_L1_FEE_SELECTOR == bytes.fromhex("49948e0e")


def test_l1_fee_eth_call_is_abi_encoded_bytes(node: FakeNode) -> None:
    with JsonRpcGasOracle(node.url, BASE) as oracle:
        oracle.figures()
    method, params = node.calls[1]
    assert method == "eth_call"
    call, block = params
    assert block == "latest"
    assert call["to"] == GAS_PRICE_ORACLE
    data = bytes.fromhex(call["data"].removeprefix("0x"))
    tx = representative_swap_tx(BASE.chain_id)
    assert data[:4] == bytes.fromhex("49948e0e")
    assert int.from_bytes(data[4:36], "big") == 0x20
    assert int.from_bytes(data[36:68], "big") == len(tx)
    assert data[68 : 68 + len(tx)] == tx
    assert len(data) % 32 == 4
    assert data[68 + len(tx) :] == b"\x00" * (len(data) - 68 - len(tx))
    assert node.l1_fee_inputs == [tx]
    # An EIP-1559 (type 2) transaction for this chain: 0x02 || rlp list.
    assert tx[0] == 2
    assert tx[1] in range(0xF8, 0xFB)
    assert bytes.fromhex("822105") in tx[:8]  # chain id 8453


def test_abi_encoding_pads_to_whole_words() -> None:
    assert encode_get_l1_fee(b"") == GET_L1_FEE_SELECTOR + (32).to_bytes(32, "big") + bytes(32)
    one = encode_get_l1_fee(b"\xab")
    assert len(one) == 4 + 32 * 3
    assert one[68:] == b"\xab" + bytes(31)
    assert len(encode_get_l1_fee(bytes(64))) == 4 + 32 * 4


def test_figures_are_cached_for_the_refresh_interval(node: FakeNode) -> None:
    clock = Clock()
    with JsonRpcGasOracle(node.url, BASE, refresh_seconds=12, clock=clock) as oracle:
        first = oracle.figures()
        clock.now += 11.9
        assert oracle.figures() == first
        assert node.methods() == ["eth_feeHistory", "eth_call"]
        node.base_fees_wei[-1] = 6_000_000
        clock.now += 0.1
        assert oracle.figures().base_fee_gwei == Decimal("0.006")
        assert node.methods() == ["eth_feeHistory", "eth_call"] * 2
        oracle.figures()
        assert len(node.calls) == 4


def test_a_failure_is_cached_too_then_retried(node: FakeNode) -> None:
    clock = Clock()
    node.error = "header not found"
    with JsonRpcGasOracle(node.url, ETHEREUM, refresh_seconds=12, clock=clock) as oracle:
        for _ in range(3):
            with pytest.raises(RpcError, match="header not found"):
                oracle.figures()
        assert len(node.calls) == 1
        node.error = None
        clock.now += 12
        assert oracle.figures().base_fee_gwei == Decimal("0.005123457")
        assert len(node.calls) == 2


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2/SECRETKEY0123456789?apikey=ALSOSECRET42"


@pytest.mark.parametrize(
    ("switch", "message"),
    [
        ("error", r"eth_feeHistory on 127\.0\.0\.1:\d+: JSON-RPC error -32000: rate limited"),
        ("http_status", r"eth_feeHistory on 127\.0\.0\.1:\d+: HTTP 503 Service Unavailable"),
        ("garbage", r"eth_feeHistory on 127\.0\.0\.1:\d+: malformed response: body is not JSON"),
        ("empty", r"eth_feeHistory on 127\.0\.0\.1:\d+: malformed result: no baseFeePerGas"),
        ("bad_hex", r"malformed result: baseFeePerGas 'xyz' is not hex"),
        ("timeout", r"eth_feeHistory on 127\.0\.0\.1:\d+: timed out after 0\.1s"),
        ("refused", r"eth_feeHistory on 127\.0\.0\.1:\d+: could not connect"),
    ],
)
def test_failures_raise_clear_errors_without_url_secrets(
    node: FakeNode, switch: str, message: str
) -> None:
    url = _keyed_url(node)
    if switch == "error":
        node.error = "rate limited"
    elif switch == "http_status":
        node.http_status = 503
    elif switch == "garbage":
        node.garbage = True
    elif switch == "empty":
        node.base_fees_wei = []
    elif switch == "bad_hex":
        node.malformed = True
    elif switch == "timeout":
        node.delay_seconds = 0.5
    else:
        url = _refused_url()
    oracle = JsonRpcGasOracle(url, BASE, timeout_seconds=0.1)
    with oracle, pytest.raises(RpcError, match=message) as caught:
        oracle.figures()
    text = str(caught.value)
    assert "SECRETKEY" not in text
    assert "ALSOSECRET" not in text
    assert "/v2" not in text
    assert "SECRETKEY" not in repr(oracle)


def test_node_error_text_echoing_the_key_is_scrubbed(node: FakeNode) -> None:
    url = _keyed_url(node)
    node.error = f"invalid project id for {url}, key SECRETKEY0123456789"
    with JsonRpcGasOracle(url, BASE) as oracle, pytest.raises(RpcError) as caught:
        oracle.figures()
    assert "SECRETKEY" not in str(caught.value)
    assert "ALSOSECRET" not in str(caught.value)


@pytest.mark.parametrize("wei", [0, 1, 10**27 + 7])
def test_l1_fee_word_is_decoded_exactly(node: FakeNode, wei: int) -> None:
    node.l1_fee_wei = wei
    with JsonRpcGasOracle(node.url, BASE) as oracle:
        assert oracle.figures().l1_fee_native == Decimal(f"{wei}e-18")


def test_bad_urls_are_rejected_without_echoing_them() -> None:
    with pytest.raises(ValueError, match="http\\(s\\) URL") as caught:
        JsonRpcGasOracle("wss://node.example/SECRETKEY", BASE)
    assert "SECRETKEY" not in str(caught.value)


def test_simulator_bills_the_live_figures_exactly(node: FakeNode) -> None:
    with JsonRpcGasOracle(node.url, BASE) as oracle:
        sim = DexSimulator(BASE, gas_model=GasModel(BASE, live=oracle.figures))
        quote = sim.quote("WETH", Side.BUY, Decimal(1000), ETH_USD, ETH_USD, Decimal("0.5"), NOW)
    gas = quote.gas
    units = BASE.gas.v3_swap_gas
    assert gas.source == "rpc"
    assert gas.gas_units == units
    assert gas.base_fee_gwei == Decimal("0.005123457")
    assert gas.priority_fee_gwei == Decimal("0.001000001")
    execution = Decimal(units * (5_123_457 + 1_000_001)) / Decimal(10**18)
    l1_fee = Decimal(L1_FEE_WEI) / Decimal(10**18)
    assert gas.execution_fee_native == execution
    assert gas.l1_fee_native == l1_fee
    assert gas.total_native == execution + l1_fee
    assert gas.total_usd == (gas.total_native * ETH_USD).quantize(Decimal("0.00000001"))


def test_simulator_falls_back_to_the_model_when_the_node_fails(node: FakeNode) -> None:
    node.http_status = 502
    with JsonRpcGasOracle(node.url, BASE) as oracle:
        sim = DexSimulator(BASE, gas_model=GasModel(BASE, live=oracle.figures))
        quote = sim.quote("WETH", Side.BUY, Decimal(1000), ETH_USD, ETH_USD, Decimal("0.5"), NOW)
        fill = sim.execute(quote, NOW, ETH_USD, needs_approval=True)
    modelled = DexSimulator(BASE).quote(
        "WETH", Side.BUY, Decimal(1000), ETH_USD, ETH_USD, Decimal("0.5"), NOW
    )
    assert quote.gas.source == "default"
    assert quote.gas == modelled.gas
    assert fill.gas.source == "default"
    assert fill.approval_gas is not None
    assert fill.approval_gas.source == "default"
    assert len(node.calls) == 1  # the failure is cached: one request for quote and fill


def test_gas_model_live_provider_rules() -> None:
    live = LiveGasFigures(Decimal(1), Decimal(0))
    assert GasModel(ETHEREUM, live=lambda: live).cost(100_000, NOW, ETH_USD).source == "rpc"
    assert GasModel(ETHEREUM, live=lambda: None).cost(100_000, NOW, ETH_USD) == GasModel(
        ETHEREUM
    ).cost(100_000, NOW, ETH_USD)

    def broken() -> LiveGasFigures:
        raise RuntimeError("a bug, not an outage")

    with pytest.raises(RuntimeError, match="a bug"):
        GasModel(ETHEREUM, live=broken).cost(100_000, NOW, ETH_USD)
    with pytest.raises(ValueError, match="not both"):
        GasModel(ETHEREUM, overrides=live, live=lambda: live)


def test_rpc_url_for_reads_the_chain_variable() -> None:
    env = {"RPC_URL_8453": " https://base.example/v2/key ", "RPC_URL_1": ""}
    assert rpc_url_for(8453, env) == "https://base.example/v2/key"
    assert rpc_url_for(1, env) is None
    assert rpc_url_for(42161, env) is None
