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


#: Answers every operation with a request body can give before its own validation runs.
_BODY_REFUSALS = {
    "413": "Request body larger than DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB by default).",
    "415": "Request body is not application/json.",
}
_CSRF_REFUSAL = "Signed in with the session cookie but no X-CSRFToken header."
_UNSAFE = {"post", "put", "patch", "delete"}


def document_refusals(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Add the answers the framework gives before a view runs, in the shared error shape.

    413 and 415 to each operation with a body; 403 (CSRF) to each unsafe operation that takes
    the session cookie.
    """
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                for code, description in _BODY_REFUSALS.items():
                    responses.setdefault(code, {"content": error, "description": description})
            cookie = any("cookieAuth" in s for s in operation.get("security", []))
            if method in _UNSAFE and cookie:
                responses.setdefault("403", {"content": error, "description": _CSRF_REFUSAL})
    return result
