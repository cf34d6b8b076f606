"""Readiness checks: can this process serve requests and run bots right now?"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer  # type: ignore[import-untyped, unused-ignore]
from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

#: How long the channel layer round trip may take before it counts as down.
CHANNEL_LAYER_TIMEOUT_SECONDS = 2.0
DATABASE_ALIAS = "default"


def check_database() -> None:
    with connections[DATABASE_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_migrations() -> None:
    executor = MigrationExecutor(connections[DATABASE_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        raise RuntimeError(f"{len(plan)} migration(s) not applied: {names}")


async def _round_trip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel("readyz.")
    await layer.send(channel, {"type": "readyz.ping"})
    message = await asyncio.wait_for(layer.receive(channel), CHANNEL_LAYER_TIMEOUT_SECONDS)
    if message.get("type") != "readyz.ping":
        raise RuntimeError(f"channel layer returned {message!r}")


def check_channel_layer() -> None:
    async_to_sync(_round_trip)()


def readiness_checks() -> dict[str, Callable[[], None]]:
    """The checks that apply to this deployment; the channel layer only when Redis carries it."""
    checks: dict[str, Callable[[], None]] = {
        "database": check_database,
        "migrations": check_migrations,
    }
    if settings.REDIS_URL:
        checks["channel_layer"] = check_channel_layer
    return checks


def run_checks() -> tuple[bool, dict[str, str]]:
    """Run every check; each reports "ok" or why it failed, and one failure makes it not ready."""
    results: dict[str, str] = {}
    for name, check in readiness_checks().items():
        try:
            check()
        except Exception as exc:  # a readiness probe reports every failure, whatever its kind
            results[name] = f"failed: {exc.__class__.__name__}: {exc}"
        else:
            results[name] = "ok"
    return all(r == "ok" for r in results.values()), results
