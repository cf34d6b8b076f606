"""The API's JSON parser: DRF's, with a bound on nesting so hostile bodies get a 400, not a 500."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

#: Deepest JSON accepted. Real bodies nest three levels (bot/start's strategy_config); Python's
#: decoder recurses once per level and so would validation and error rendering after it.
MAX_DEPTH = 32


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests more than `limit` arrays/objects; iterative, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class JSONParser(parsers.JSONParser):
    """Refuses bodies nested deeper than `MAX_DEPTH` with a 400 naming the limit.

    Without it, 100,000 ``[`` exhaust the decoder's recursion (a RecursionError DRF does not
    catch: a 500), and a few hundred levels that do decode would recurse again downstream.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        message = f"JSON parse error - nested deeper than {MAX_DEPTH} levels"
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(message) from None
        if too_deep(data):
            raise ParseError(message)
        return data
