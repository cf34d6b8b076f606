"""Corrections drf-spectacular's generated OpenAPI schema needs to describe the API exactly."""

from __future__ import annotations

import re
from typing import Any

#: drf-spectacular's pattern for a DecimalField: every part optional, so it also admits "", "-"
#: and ".", which the API rightly rejects with a 400.
_LOOSE_DECIMAL = re.compile(r"^\^-\?\\d\{0,(\d+)\}\(\?:\\\.\\d\{0,(\d+)\}\)\?\$$")


def require_decimal_digits(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Tighten each decimal pattern to need a digit, so the schema admits only what parses."""
    _tighten(result)
    return result


def _tighten(node: Any) -> None:
    if isinstance(node, dict):
        pattern = node.get("pattern")
        match = _LOOSE_DECIMAL.match(pattern) if isinstance(pattern, str) else None
        if match and int(match[1]) > 0:
            whole, places = match[1], match[2]
            node["pattern"] = (
                rf"^-?(?:\d{{1,{whole}}}(?:\.\d{{0,{places}}})?|\.\d{{1,{places}}})$"
                if int(places) > 0
                else rf"^-?\d{{1,{whole}}}$"
            )
        for value in node.values():
            _tighten(value)
    elif isinstance(node, list):
        for value in node:
            _tighten(value)
