"""How strategies write numbers in their reasoning, so every strategy reads the same way."""

from __future__ import annotations

import math
from decimal import Decimal


def price(value: float) -> str:
    """Two decimals for dollar-priced tokens, four significant digits for sub-dollar ones."""
    if value >= 1 or value <= 0:
        return f"{value:,.2f}"
    return f"{value:.{3 - math.floor(math.log10(value))}f}"


def usd(value: Decimal) -> str:
    return f"${value:,.2f}"


def number(value: Decimal) -> str:
    """A Decimal without exponent or trailing zeros ("25", "0.5")."""
    return f"{value.normalize():f}"
