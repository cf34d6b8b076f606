"""Argument types shared by the management commands, so `--from 2025-12-10` means one thing."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def utc_datetime(value: str) -> datetime:
    """An ISO date or time, read as UTC unless it says otherwise."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
