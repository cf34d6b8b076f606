"""One quantization policy for every amount in the ledger.

Amounts are `Decimal` and are quantized at the moment they enter the ledger, never later, so
that sums over stored rows reproduce the engine's balances to the last digit.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal
from functools import cache

#: USD amounts (cash, fees, gas, P&L): 8 decimal places, like a satoshi of a dollar.
USD_PLACES = 8
#: Token quantities and prices: 18 decimal places, the finest ERC-20 unit.
QTY_PLACES = 18
PRICE_PLACES = 18
#: Ratios shown to people (basis points, percentages).
RATIO_PLACES = 4

USD_MAX_DIGITS = 30
#: The largest starting balance of an account (the API's and the backtest's limit).
MAX_INITIAL_BALANCE_USD = Decimal(1_000_000_000)
QTY_MAX_DIGITS = 40
PRICE_MAX_DIGITS = 40

_USD_STEP = Decimal(1).scaleb(-USD_PLACES)
_QTY_STEP = Decimal(1).scaleb(-QTY_PLACES)
_PRICE_STEP = Decimal(1).scaleb(-PRICE_PLACES)
_RATIO_STEP = Decimal(1).scaleb(-RATIO_PLACES)

#: Enough precision that no intermediate product of a price and a quantity is rounded.
CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN)
#: The same precision, rounding down. Amounts are quantized through a context's own methods:
#: `Decimal.quantize` parses its keyword arguments on every call, which cost more than rounding.
_DOWN = Context(prec=60, rounding=ROUND_DOWN)

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
BPS = Decimal(10_000)


def usd(value: Decimal | int | str) -> Decimal:
    """Quantize a USD amount to the ledger's precision (banker's rounding)."""
    return CONTEXT.quantize(_decimal(value), _USD_STEP)


def qty(value: Decimal | int | str) -> Decimal:
    """Quantize a token quantity, rounding down so the ledger never holds more than it got."""
    return _DOWN.quantize(_decimal(value), _QTY_STEP)


def price(value: Decimal | int | str) -> Decimal:
    """Quantize a USD-per-token price."""
    return CONTEXT.quantize(_decimal(value), _PRICE_STEP)


def ratio(value: Decimal | int | str) -> Decimal:
    """Quantize a ratio meant for people: basis points, percentages, scores."""
    return CONTEXT.quantize(_decimal(value), _RATIO_STEP)


def _decimal(value: Decimal | int | str) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value)


def usd_value(quantity: Decimal, price: Decimal) -> Decimal:
    """`usd(mul(quantity, price))` in one step: what a holding is worth, marked every bar."""
    return CONTEXT.quantize(CONTEXT.multiply(quantity, price), _USD_STEP)


def mul(a: Decimal, b: Decimal) -> Decimal:
    """Multiply without the default context's 28-digit rounding."""
    return CONTEXT.multiply(a, b)


def div(a: Decimal, b: Decimal) -> Decimal:
    """Divide with the engine's precision."""
    return CONTEXT.divide(a, b)


def to_base_units(amount: Decimal, decimals: int) -> int:
    """Token amount to integer base units (wei-like), rounding down as a contract would."""
    return int(_DOWN.to_integral_value(CONTEXT.multiply(amount, _unit(decimals))))


@cache
def _unit(decimals: int) -> Decimal:
    """10 ** decimals: a token's whole unit in base units."""
    return Decimal(10) ** decimals


def from_base_units(units: int, decimals: int) -> Decimal:
    """Integer base units back to a token amount, exactly."""
    return CONTEXT.scaleb(Decimal(units), -decimals)
