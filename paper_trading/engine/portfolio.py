"""Positions and the cash ledger: the single definition of cost basis and realized P&L.

The ledger identity every state satisfies (checked by `verify_paper_trading`):

    cash + sum(position cost basis) == initial balance + realized P&L - swap fees - gas

Cost basis is what the swap put into the token net of the swap fee (input minus fee). Realized
P&L on a sale is the gross proceeds before the swap fee minus the cost basis sold, so realized
P&L measures price movement and price impact only; fees and gas are counted once, on their own.
A trade's *net* P&L, used for win rate, also charges the sale's costs and the entry costs of the
part sold.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from paper_trading.engine import money
from paper_trading.engine.dex.quote import Side, SwapFill
from paper_trading.engine.frozen import set_at_once
from paper_trading.engine.strategies.base import PositionView


@dataclass
class Position:
    position_id: uuid.UUID
    symbol: str
    chain_id: int
    token_address: str
    quantity: Decimal
    cost_basis_usd: Decimal
    #: Swap fees and gas paid to open what is still held; charged to net P&L when sold.
    entry_costs_usd: Decimal
    opened_at: datetime
    current_price_usd: Decimal
    #: Highest price seen while open, for the trailing stop.
    peak_price_usd: Decimal
    realized_pnl_usd: Decimal = money.ZERO
    closed_at: datetime | None = None
    #: (quantity, price, value) of the last valuation: a tick values a position many times
    #: (exits, breakers, the decision, snapshots) at one price.
    _valued: tuple[Decimal, Decimal, Decimal] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    #: (value, cost basis, percent) of the last P&L percent: the exit rules, the decision and
    #: its thought each read it at one valuation.
    _pnl_percent: tuple[Decimal, Decimal, Decimal] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def average_entry_price_usd(self) -> Decimal:
        if not self.quantity:
            return money.ZERO
        return money.price(money.div(self.cost_basis_usd, self.quantity))

    @property
    def current_value_usd(self) -> Decimal:
        quantity, price = self.quantity, self.current_price_usd
        valued = self._valued
        if valued is not None and valued[0] is quantity and valued[1] is price:
            return valued[2]
        value = money.usd_value(quantity, price)
        self._valued = (quantity, price, value)
        return value

    @property
    def unrealized_pnl_usd(self) -> Decimal:
        return self.current_value_usd - self.cost_basis_usd

    @property
    def unrealized_pnl_percent(self) -> Decimal:
        cost = self.cost_basis_usd
        if not cost:
            return money.ZERO
        value = self.current_value_usd
        known = self._pnl_percent
        if known is not None and known[0] is value and known[1] is cost:
            return known[2]
        percent = money.ratio(money.div((value - cost) * 100, cost))
        self._pnl_percent = (value, cost, percent)
        return percent

    def revalue(self, price_usd: Decimal) -> None:
        self.current_price_usd = price_usd
        self.peak_price_usd = max(self.peak_price_usd, price_usd)

    def view(self) -> PositionView:
        return PositionView(
            quantity=self.quantity,
            average_entry_price_usd=self.average_entry_price_usd,
            cost_basis_usd=self.cost_basis_usd,
            unrealized_pnl_percent=self.unrealized_pnl_percent,
            opened_at=self.opened_at,
        )


@set_at_once
@dataclass(frozen=True)
class LedgerEntry:
    """What one fill did to the books."""

    position: Position | None
    realized_pnl_usd: Decimal
    net_pnl_usd: Decimal
    position_closed: bool


class InsufficientFundsError(ValueError):
    pass


@dataclass
class Portfolio:
    initial_balance_usd: Decimal
    cash_usd: Decimal
    realized_pnl_usd: Decimal = money.ZERO
    fees_usd: Decimal = money.ZERO
    gas_usd: Decimal = money.ZERO
    positions: dict[str, Position] = field(default_factory=dict)
    #: Tokens this account has already approved for the router (an approval is paid once).
    approvals: set[str] = field(default_factory=set)

    @classmethod
    def new(cls, initial_balance_usd: Decimal) -> Portfolio:
        balance = money.usd(initial_balance_usd)
        return cls(initial_balance_usd=balance, cash_usd=balance)

    @property
    def positions_value_usd(self) -> Decimal:
        # sum() in the same order, without a generator: read several times every tick.
        total = money.ZERO
        for p in self.positions.values():
            total += p.current_value_usd
        return total

    @property
    def positions_cost_usd(self) -> Decimal:
        return sum((p.cost_basis_usd for p in self.positions.values()), money.ZERO)

    @property
    def total_value_usd(self) -> Decimal:
        return self.cash_usd + self.positions_value_usd

    @property
    def unrealized_pnl_usd(self) -> Decimal:
        # sum() in the same order, without a generator: every tick's snapshot reads it.
        total = money.ZERO
        for p in self.positions.values():
            total += p.unrealized_pnl_usd
        return total

    def ledger_difference(self) -> Decimal:
        """Zero when the books balance; anything else is a bug."""
        left = self.cash_usd + self.positions_cost_usd
        right = self.initial_balance_usd + self.realized_pnl_usd - self.fees_usd - self.gas_usd
        return left - right

    def needs_approval(self, side: Side, symbol: str, quote_symbol: str) -> bool:
        return (quote_symbol if side is Side.BUY else symbol) not in self.approvals

    def apply(
        self,
        fill: SwapFill,
        *,
        token_address: str,
        quote_symbol: str,
        now: datetime,
        position_id: uuid.UUID,
        routing_fee_usd: Decimal = money.ZERO,
    ) -> LedgerEntry:
        """Book a fill. `position_id` names the position if this fill opens one.

        `routing_fee_usd` (private transaction routing) is paid to get the swap included, so it
        is booked as gas: the ledger identity keeps one cost line per kind of payment.
        """
        quote = fill.quote
        if quote.side is Side.SELL and not fill.reverted:
            # Checked before anything is booked, so a refused sale leaves the books untouched.
            self._check_holding(quote.symbol, fill.amount_in)
        gas = fill.total_gas_usd + routing_fee_usd
        spent_token = quote_symbol if quote.side is Side.BUY else quote.symbol
        if fill.approval_gas is not None:
            self.approvals.add(spent_token)
        self.gas_usd += gas
        self.cash_usd -= gas
        if fill.reverted:
            return LedgerEntry(self.positions.get(quote.symbol), money.ZERO, -gas, False)
        self.fees_usd += fill.fee_usd
        if quote.side is Side.BUY:
            return self._buy(fill, token_address, now, position_id, gas)
        return self._sell(fill, now, gas)

    def _buy(
        self,
        fill: SwapFill,
        token_address: str,
        now: datetime,
        position_id: uuid.UUID,
        gas: Decimal,
    ) -> LedgerEntry:
        quote = fill.quote
        spent = money.usd(fill.amount_in)
        cost = spent - fill.fee_usd
        self.cash_usd -= spent
        position = self.positions.get(quote.symbol)
        if position is None:
            position = Position(
                position_id=position_id,
                symbol=quote.symbol,
                chain_id=quote.chain_id,
                token_address=token_address,
                quantity=money.ZERO,
                cost_basis_usd=money.ZERO,
                entry_costs_usd=money.ZERO,
                opened_at=now,
                current_price_usd=fill.inclusion_mid_price_usd,
                peak_price_usd=fill.inclusion_mid_price_usd,
            )
            self.positions[quote.symbol] = position
        position.quantity += fill.amount_out
        position.cost_basis_usd += cost
        position.entry_costs_usd += fill.fee_usd + gas
        position.revalue(fill.inclusion_mid_price_usd)
        return LedgerEntry(position, money.ZERO, -(fill.fee_usd + gas), False)

    def _sell(self, fill: SwapFill, now: datetime, gas: Decimal) -> LedgerEntry:
        quote = fill.quote
        position = self._check_holding(quote.symbol, fill.amount_in)
        closing = fill.amount_in == position.quantity
        if closing:
            cost_sold = position.cost_basis_usd
            entry_costs_sold = position.entry_costs_usd
        else:
            share = money.div(fill.amount_in, position.quantity)
            cost_sold = money.usd(money.mul(position.cost_basis_usd, share))
            entry_costs_sold = money.usd(money.mul(position.entry_costs_usd, share))
        proceeds = money.usd(fill.amount_out)
        realized = proceeds + fill.fee_usd - cost_sold
        net = realized - fill.fee_usd - gas - entry_costs_sold
        self.cash_usd += proceeds
        self.realized_pnl_usd += realized
        position.quantity -= fill.amount_in
        position.cost_basis_usd -= cost_sold
        position.entry_costs_usd -= entry_costs_sold
        position.realized_pnl_usd += realized
        position.revalue(fill.inclusion_mid_price_usd)
        if closing:
            position.closed_at = now
            del self.positions[quote.symbol]
        return LedgerEntry(position, realized, net, closing)

    def _check_holding(self, symbol: str, quantity: Decimal) -> Position:
        position = self.positions.get(symbol)
        if position is None or quantity > position.quantity:
            raise InsufficientFundsError(
                f"cannot sell {quantity} {symbol}: holding {position.quantity if position else 0}"
            )
        return position
