"""The ledger: cost basis, realized and net P&L, fees and gas, worked by hand to the cent."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paper_trading.engine import money
from paper_trading.engine.chains import BASE, PoolKind
from paper_trading.engine.dex.quote import GasCost, Side, SwapFill, SwapQuote
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.portfolio import InsufficientFundsError, LedgerEntry, Portfolio

NOW = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
D = Decimal
ZERO = D(0)
POSITION_ID = uuid.UUID(int=7)
LINK_ADDRESS = "0xlink"


def _gas(total_usd: str) -> GasCost:
    return GasCost(
        gas_units=120_000,
        base_fee_gwei=D("0.005"),
        priority_fee_gwei=D("0.001"),
        execution_fee_native=ZERO,
        l1_fee_native=ZERO,
        total_native=ZERO,
        native_price_usd=D(3000),
        total_usd=D(total_usd),
    )


SWAP_GAS = _gas("0.5")
APPROVAL_GAS = _gas("0.25")


def _fill(
    side: Side,
    amount_in: str,
    amount_out: str,
    fee_usd: str,
    mid: str,
    *,
    approval: bool,
    reverted: bool = False,
) -> SwapFill:
    """A fill with round numbers; only the fields the ledger reads matter."""
    quote = SwapQuote(
        chain_id=BASE.chain_id,
        symbol="LINK",
        side=side,
        pool_kind=PoolKind.V3,
        fee_pips=3000,
        amount_in=D(amount_in),
        amount_out=D(amount_out),
        min_amount_out=D(amount_out),
        mid_price_usd=D(mid),
        execution_price_usd=D(mid),
        fee_amount=D(fee_usd),
        fee_usd=D(fee_usd),
        fee_bps=D(30),
        price_impact_bps=ZERO,
        slippage_tolerance_bps=D(50),
        gas=SWAP_GAS,
    )
    return SwapFill(
        quote=quote,
        reverted=reverted,
        amount_in=ZERO if reverted else D(amount_in),
        amount_out=ZERO if reverted else D(amount_out),
        execution_price_usd=ZERO if reverted else D(mid),
        inclusion_mid_price_usd=D(mid),
        fee_amount=ZERO if reverted else D(fee_usd),
        fee_usd=ZERO if reverted else D(fee_usd),
        price_impact_bps=ZERO,
        slippage_bps=ZERO,
        gas=SWAP_GAS,
        approval_gas=APPROVAL_GAS if approval else None,
        revert_reason="price moved" if reverted else None,
    )


def _apply(portfolio: Portfolio, fill: SwapFill, now: datetime = NOW) -> LedgerEntry:
    return portfolio.apply(
        fill,
        token_address=LINK_ADDRESS,
        quote_symbol="USDC",
        now=now,
        position_id=POSITION_ID,
    )


# Buy: 1,000 USDC in, 50 LINK out, fee 3 USDC, mid 20, first swap so the USDC approval is paid.
BUY = _fill(Side.BUY, "1000", "50", "3", "20", approval=True)
# Sell 20 of the 50 LINK at mid 25: gross 500, fee 0.3% = 1.5, proceeds 498.5; LINK approval.
PARTIAL_SELL = _fill(Side.SELL, "20", "498.5", "1.5", "25", approval=True)
# Sell the other 30 at mid 18: gross 540, fee 1.62, proceeds 538.38; LINK already approved.
CLOSING_SELL = _fill(Side.SELL, "30", "538.38", "1.62", "18", approval=False)


def test_buy_partial_sell_and_close_balance_to_the_cent() -> None:
    p = Portfolio.new(D(10_000))
    assert p.ledger_difference() == 0

    buy = _apply(p, BUY)
    # Cash: 10,000 - 1,000 spent - 0.5 swap gas - 0.25 approval gas.
    assert p.cash_usd == D("8999.25")
    position = p.positions["LINK"]
    assert position.position_id == POSITION_ID
    assert position.token_address == LINK_ADDRESS
    assert position.quantity == D(50)
    # Cost basis is the input net of the swap fee: 1,000 - 3.
    assert position.cost_basis_usd == D(997)
    # Entry costs: fee 3 + gas 0.75.
    assert position.entry_costs_usd == D("3.75")
    assert position.average_entry_price_usd == D("19.94")  # 997 / 50
    # Marked at the inclusion mid 20: 50 x 20 - 997 = 3, i.e. 3 / 997 = 0.3009%.
    assert position.unrealized_pnl_usd == D(3)
    assert position.unrealized_pnl_percent == D("0.3009")
    assert (p.fees_usd, p.gas_usd, p.realized_pnl_usd) == (D(3), D("0.75"), ZERO)
    assert buy == LedgerEntry(position, ZERO, D("-3.75"), False)
    # 8,999.25 + 997 == 10,000 + 0 - 3 - 0.75
    assert p.ledger_difference() == 0

    partial = _apply(p, PARTIAL_SELL, NOW + timedelta(hours=1))
    # 20 of 50 is 40%: cost sold 997 x 0.4 = 398.8, entry costs sold 3.75 x 0.4 = 1.5.
    # Realized = proceeds 498.5 + fee 1.5 - 398.8 = 101.2 (the move from 19.94 to 25 on 20).
    assert partial.realized_pnl_usd == D("101.2")
    # Net = 101.2 - fee 1.5 - gas (0.5 + 0.25) - entry costs sold 1.5 = 97.45.
    assert partial.net_pnl_usd == D("97.45")
    assert not partial.position_closed
    # Cash: 8,999.25 - 0.75 gas + 498.5 proceeds.
    assert p.cash_usd == D("9497.00")
    assert position.quantity == D(30)
    assert position.cost_basis_usd == D("598.2")
    assert position.entry_costs_usd == D("2.25")
    assert position.average_entry_price_usd == D("19.94")  # a sale does not move the entry
    assert position.current_price_usd == D(25)
    assert position.peak_price_usd == D(25)
    assert position.is_open
    assert (p.fees_usd, p.gas_usd, p.realized_pnl_usd) == (D("4.5"), D("1.5"), D("101.2"))
    # 9,497 + 598.2 == 10,000 + 101.2 - 4.5 - 1.5
    assert p.ledger_difference() == 0

    close = _apply(p, CLOSING_SELL, NOW + timedelta(hours=2))
    # Everything left is sold: cost sold 598.2, entry costs sold 2.25.
    # Realized = 538.38 + 1.62 - 598.2 = -58.2; net = -58.2 - 1.62 - 0.5 - 2.25 = -62.57.
    assert close.realized_pnl_usd == D("-58.2")
    assert close.net_pnl_usd == D("-62.57")
    assert close.position_closed
    assert close.position is position
    assert "LINK" not in p.positions
    assert position.closed_at == NOW + timedelta(hours=2)
    assert not position.is_open
    assert position.quantity == 0
    assert position.cost_basis_usd == 0
    assert position.entry_costs_usd == 0
    assert position.realized_pnl_usd == D("43.0")  # 101.2 - 58.2
    assert position.peak_price_usd == D(25)  # the peak survives the fall to 18
    # Cash: 9,497 - 0.5 + 538.38.
    assert p.cash_usd == D("10034.88")
    assert (p.fees_usd, p.gas_usd, p.realized_pnl_usd) == (D("6.12"), D(2), D(43))
    # 10,034.88 == 10,000 + 43 - 6.12 - 2
    assert p.ledger_difference() == 0
    # The sales' net P&L, which carries the entry costs, adds up to the round trip's result.
    assert partial.net_pnl_usd + close.net_pnl_usd == p.cash_usd - p.initial_balance_usd
    assert p.total_value_usd == p.cash_usd


def test_adding_to_a_position_averages_the_entry() -> None:
    p = Portfolio.new(D(10_000))
    _apply(p, BUY)
    # Another 1,000 USDC buys only 40 LINK at a mid of 25, fee 3; no approval this time.
    _apply(p, _fill(Side.BUY, "1000", "40", "3", "25", approval=False), NOW + timedelta(hours=1))
    position = p.positions["LINK"]
    assert position.quantity == D(90)
    assert position.cost_basis_usd == D(1994)  # 997 + 997
    assert position.entry_costs_usd == D("7.25")  # 3.75 + 3 + 0.5
    assert position.average_entry_price_usd == money.price(D(1994) / D(90))
    assert position.opened_at == NOW  # the first buy opened it
    assert position.position_id == POSITION_ID
    # 10,000 - 1,000.75 - 1,000.5
    assert p.cash_usd == D("7998.75")
    assert p.ledger_difference() == 0


def test_a_reverted_fill_only_costs_gas() -> None:
    p = Portfolio.new(D(10_000))
    entry = _apply(p, _fill(Side.BUY, "1000", "50", "3", "20", approval=False, reverted=True))
    assert entry == LedgerEntry(None, ZERO, D("-0.5"), False)
    assert p.cash_usd == D("9999.5")
    assert p.gas_usd == D("0.5")
    assert p.fees_usd == 0
    assert p.realized_pnl_usd == 0
    assert p.positions == {}
    assert p.ledger_difference() == 0


def test_a_reverted_sale_keeps_the_position_and_pays_gas() -> None:
    p = Portfolio.new(D(10_000))
    _apply(p, BUY)
    entry = _apply(p, replace(PARTIAL_SELL, reverted=True, amount_in=ZERO, amount_out=ZERO))
    position = p.positions["LINK"]
    # Gas 0.5 + the LINK approval 0.25, which is paid even though the swap reverted.
    assert entry == LedgerEntry(position, ZERO, D("-0.75"), False)
    assert position.quantity == D(50)
    assert p.cash_usd == D("8998.50")
    assert p.ledger_difference() == 0
    assert not p.needs_approval(Side.SELL, "LINK", "USDC")


@pytest.mark.parametrize(
    "amount",
    [pytest.param("50.000000000000000001", id="one-wei-too-many"), pytest.param("51", id="51")],
)
def test_selling_more_than_held_raises_and_books_nothing(amount: str) -> None:
    p = Portfolio.new(D(10_000))
    _apply(p, BUY)
    before = (p.cash_usd, p.fees_usd, p.gas_usd, p.realized_pnl_usd, set(p.approvals))
    oversell = _fill(Side.SELL, amount, "1000", "3", "20", approval=True)
    with pytest.raises(InsufficientFundsError, match="holding 50"):
        _apply(p, oversell)
    assert (p.cash_usd, p.fees_usd, p.gas_usd, p.realized_pnl_usd, p.approvals) == before
    assert p.positions["LINK"].quantity == D(50)
    assert p.ledger_difference() == 0


def test_selling_a_token_never_bought_raises() -> None:
    p = Portfolio.new(D(10_000))
    with pytest.raises(InsufficientFundsError, match="cannot sell 1 LINK: holding 0"):
        _apply(p, _fill(Side.SELL, "1", "20", "0.06", "20", approval=False))
    assert p.cash_usd == D(10_000)
    assert p.ledger_difference() == 0


def test_approval_is_recorded_once_per_spent_token() -> None:
    p = Portfolio.new(D(10_000))
    assert p.needs_approval(Side.BUY, "LINK", "USDC")
    assert p.needs_approval(Side.SELL, "LINK", "USDC")
    _apply(p, BUY)
    # A BUY spends USDC: USDC is approved now, for any token; LINK is not yet.
    assert p.approvals == {"USDC"}
    assert not p.needs_approval(Side.BUY, "LINK", "USDC")
    assert not p.needs_approval(Side.BUY, "AAVE", "USDC")
    assert p.needs_approval(Side.SELL, "LINK", "USDC")
    _apply(p, PARTIAL_SELL)
    assert p.approvals == {"USDC", "LINK"}
    assert not p.needs_approval(Side.SELL, "LINK", "USDC")
    # A fill without approval gas leaves the set alone.
    _apply(p, CLOSING_SELL)
    assert p.approvals == {"USDC", "LINK"}
    # Approval gas was charged twice in all (0.25 each): 3 swaps x 0.5 + 2 x 0.25 = 2.0.
    assert p.gas_usd == D(2)


def test_new_portfolio_quantizes_the_balance() -> None:
    p = Portfolio.new(D("1000.123456789"))
    assert p.initial_balance_usd == D("1000.12345679")
    assert p.cash_usd == p.initial_balance_usd
    assert p.total_value_usd == p.initial_balance_usd
    assert p.ledger_difference() == 0


# -- property: the books balance exactly after any sequence of real simulated swaps ----------

SIM = DexSimulator(BASE, seed=3)
SYMBOLS = ("WETH", "UNI", "LINK")
MIDS = {"WETH": D(3000), "UNI": D(6), "LINK": D(13)}
ETH_USD = D(3000)

_operation = st.tuples(
    st.sampled_from(SYMBOLS),
    st.booleans(),  # True: buy, False: sell
    # Share of the cash (halved) to spend, or of the position to sell; 1 closes it.
    st.one_of(st.just(D(1)), st.decimals(min_value=D("0.01"), max_value=D(1), places=4)),
    st.decimals(min_value=D("0.9"), max_value=D("1.1"), places=6),  # price drift since start
    st.decimals(min_value=D("-0.01"), max_value=D("0.01"), places=6),  # drift while pending
)


@settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(_operation, min_size=1, max_size=10))
def test_any_sequence_of_simulated_swaps_keeps_the_ledger_exact(
    operations: list[tuple[str, bool, Decimal, Decimal, Decimal]],
) -> None:
    p = Portfolio.new(D(10_000))
    now = NOW
    for symbol, buying, share, drift, pending in operations:
        now += timedelta(minutes=7)
        mid = money.price(MIDS[symbol] * drift)
        if buying:
            side = Side.BUY
            amount = money.usd(p.cash_usd * share / 2).quantize(D("0.000001"))
        else:
            held = p.positions.get(symbol)
            if held is None:
                continue
            side = Side.SELL
            amount = held.quantity if share == 1 else money.qty(held.quantity * share)
        try:
            quote = SIM.quote(symbol, side, amount, mid, ETH_USD, D("0.5"), now)
        except ValueError:
            continue  # too small to swap: nothing happens, as in the executor
        needs_approval = p.needs_approval(side, symbol, "USDC")
        fill = SIM.execute(quote, now, money.price(mid * (1 + pending)), needs_approval)
        entry = p.apply(
            fill,
            token_address=BASE.token(symbol).address,
            quote_symbol="USDC",
            now=now,
            position_id=uuid.uuid4(),
        )
        assert p.ledger_difference() == 0
        if fill.reverted:
            assert entry.net_pnl_usd == -fill.total_gas_usd
        assert all(pos.quantity > 0 for pos in p.positions.values())


@given(
    quantity=st.decimals(min_value=0, max_value=10**9, places=18),
    price=st.decimals(min_value="0.000000000000000001", max_value=10**7, places=18),
)
def test_a_holding_is_valued_as_the_rounded_product(quantity: Decimal, price: Decimal) -> None:
    # One step (marked every bar) and two steps (everywhere else) book the same cents.
    value = money.usd_value(quantity, price)
    assert value == money.usd(money.mul(quantity, price))
    assert value.as_tuple().exponent == -money.USD_PLACES


def test_pnl_percent_follows_the_price_and_each_buy() -> None:
    # Read at one valuation it is kept; a new price or a new buy must give a fresh figure.
    p = Portfolio.new(D(10_000))
    _apply(p, BUY)
    position = p.positions["LINK"]
    cost = position.cost_basis_usd

    def expected() -> Decimal:
        value = money.usd_value(position.quantity, position.current_price_usd)
        return money.ratio(
            money.div((value - position.cost_basis_usd) * 100, position.cost_basis_usd)
        )

    position.revalue(D(30))
    assert position.unrealized_pnl_percent == expected() == position.unrealized_pnl_percent
    position.revalue(D(15))
    assert position.unrealized_pnl_percent == expected() < 0
    _apply(p, _fill(Side.BUY, "1000", "40", "3", "25", approval=False), NOW + timedelta(hours=1))
    position.revalue(D(15))
    assert position.cost_basis_usd != cost
    assert position.unrealized_pnl_percent == expected()
