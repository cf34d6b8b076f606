"""Plain-text tables: what the commands and the benchmarks print for a person to read."""

from __future__ import annotations

from collections.abc import Sequence

#: The columns of every benchmark's verdict table.
TARGET_HEADER = ("metric", "value", "target", "result")


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, a dashed rule under the header, as lines."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, ["-" * w for w in widths], *rows]
    ]
