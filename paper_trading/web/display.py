"""How the pages write numbers and times; `static/paper_trading/js/format.js` writes them the same.

Values arrive as the API writes them (decimal strings, ISO 8601 times) or as Decimals.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_datetime

DASH = "—"


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _grouped(number: Decimal, places: int) -> str:
    return f"{abs(number):,.{places}f}"


def usd(value: Any) -> str:
    """$1,234.56 (a minus sign in front when negative)."""
    number = _decimal(value)
    if number is None:
        return DASH
    return ("-" if number < 0 else "") + "$" + _grouped(number, 2)


def cost(value: Any) -> str:
    """A fee or a gas bill: cents, or 4 places below $1 (gas on an L2 is a fraction of a cent)."""
    number = _decimal(value)
    if number is None:
        return DASH
    places = 4 if number and abs(number) < 1 else 2
    return ("-" if number < 0 else "") + "$" + _grouped(number, places)


def signed_usd(value: Any) -> str:
    """+$12.30 / -$12.30 / $0.00."""
    number = _decimal(value)
    if number is None:
        return DASH
    cents = number.quantize(Decimal("0.01"))
    sign = "+" if cents > 0 else "-" if cents < 0 else ""
    return sign + "$" + _grouped(number, 2)


def price(value: Any) -> str:
    """A token price: cents above $1,000, 4 places above $1, 6 significant digits below."""
    number = _decimal(value)
    if number is None:
        return DASH
    magnitude = abs(number)
    if magnitude >= 1000:
        text = _grouped(number, 2)
    elif magnitude >= 1:
        text = _grouped(number, 4)
    else:
        text = f"{float(magnitude):.6g}"
    return ("-" if number < 0 else "") + "$" + text


def percent(value: Any, places: int = 1) -> str:
    number = _decimal(value)
    if number is None:
        return DASH
    return f"{number:.{places}f}%"


def ratio(value: Any, places: int = 2) -> str:
    number = _decimal(value)
    return DASH if number is None else f"{number:.{places}f}"


def quantity(value: Any) -> str:
    number = _decimal(value)
    if number is None:
        return DASH
    return f"{float(number):.6g}"


def tone(value: Any) -> str:
    """The CSS class of a signed figure: "pos", "neg" or ""."""
    number = _decimal(value)
    if number is None or number == 0:
        return ""
    return "pos" if number > 0 else "neg"


def when(value: Any) -> str:
    """2024-05-01 12:00:05 (UTC)."""
    if value is None or value == "":
        return DASH
    moment = value if isinstance(value, datetime) else parse_datetime(str(value))
    if moment is None:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")
