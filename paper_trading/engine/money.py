"""One quantization policy for every amount in the ledger.

Amounts are `Decimal` and are quantized at the moment they enter the ledger, never later, so
that sums over stored rows reproduce the engine's balances to the last digit.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal

#: USD amounts (cash, fees, gas, P&L): 8 decimal places, like a satoshi of a dollar.
USD_PLACES = 8
#: Token quantities and prices: 18 decimal places, the finest ERC-20 unit.
QTY_PLACES = 18
PRICE_PLACES = 18
#: Ratios shown to people (basis points, percentages).
RATIO_PLACES = 4

USD_MAX_DIGITS = 30
QTY_MAX_DIGITS = 40
PRICE_MAX_DIGITS = 40

_USD_STEP = Decimal(1).scaleb(-USD_PLACES)
_QTY_STEP = Decimal(1).scaleb(-QTY_PLACES)
_PRICE_STEP = Decimal(1).scaleb(-PRICE_PLACES)
_RATIO_STEP = Decimal(1).scaleb(-RATIO_PLACES)

#: Enough precision that no intermediate product of a price and a quantity is rounded.
CONTEXT = Context(prec=60)

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
BPS = Decimal(10_000)


def usd(value: Decimal | int | str) -> Decimal:
    """Quantize a USD amount to the ledger's precision (banker's rounding)."""
    return Decimal(value).quantize(_USD_STEP, rounding=ROUND_HALF_EVEN, context=CONTEXT)


def qty(value: Decimal | int | str) -> Decimal:
    """Quantize a token quantity, rounding down so the ledger never holds more than it got."""
    return Decimal(value).quantize(_QTY_STEP, rounding=ROUND_DOWN, context=CONTEXT)


def price(value: Decimal | int | str) -> Decimal:
    """Quantize a USD-per-token price."""
    return Decimal(value).quantize(_PRICE_STEP, rounding=ROUND_HALF_EVEN, context=CONTEXT)


def ratio(value: Decimal | int | str) -> Decimal:
    """Quantize a ratio meant for people: basis points, percentages, scores."""
    return Decimal(value).quantize(_RATIO_STEP, rounding=ROUND_HALF_EVEN, context=CONTEXT)


def usd_value(quantity: Decimal, price: Decimal) -> Decimal:
    """`usd(mul(quantity, price))` in one step: what a holding is worth, marked every bar."""
    return CONTEXT.multiply(quantity, price).quantize(
        _USD_STEP, rounding=ROUND_HALF_EVEN, context=CONTEXT
    )


def mul(a: Decimal, b: Decimal) -> Decimal:
    """Multiply without the default context's 28-digit rounding."""
    return CONTEXT.multiply(a, b)


def div(a: Decimal, b: Decimal) -> Decimal:
    """Divide with the engine's precision."""
    return CONTEXT.divide(a, b)


def to_base_units(amount: Decimal, decimals: int) -> int:
    """Token amount to integer base units (wei-like), rounding down as a contract would."""
    return int(CONTEXT.multiply(amount, Decimal(10) ** decimals).to_integral_value(ROUND_DOWN))


def from_base_units(units: int, decimals: int) -> Decimal:
    """Integer base units back to a token amount, exactly."""
    return Decimal(units).scaleb(-decimals, context=CONTEXT)
