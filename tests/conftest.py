"""Suite-wide rules: in CI (CI=true) a skipped test fails the run, so no service test hides."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _in_ci():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _in_ci() and terminalreporter.stats.get("skipped"):
        terminalreporter.write_line(
            "CI=true: skipped tests count as failures; every test must run in CI.", red=True
        )


# No test may reach the internet: unless a test points it at a local fake, CoinGecko is a closed
# loopback port (the discard port), so `--prices auto` sees "unreachable" at once and replays.
os.environ["COINGECKO_API_URL"] = "http://127.0.0.1:9/api/v3"
for _name in [n for n in os.environ if n.startswith("RPC_URL_")]:
    del os.environ[_name]


@pytest.fixture(autouse=True)
def isolated_price_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Each test gets its own file-backed price cache, and so do the processes it starts."""
    folder = tmp_path / "price-cache"
    monkeypatch.setenv("PRICE_CACHE_DIR", str(folder))
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings.REDIS_URL = ""
    settings.PRICE_CACHE_DIR = folder
    settings.CACHES = {
        **settings.CACHES,
        "prices": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(folder),
        },
    }


@pytest.fixture
def redis_price_cache(monkeypatch: pytest.MonkeyPatch, settings: Any) -> str:
    """The price cache and its lock in a real Redis (TEST_REDIS_URL), under a fresh key prefix."""
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set (CI starts a Redis server and sets it)")
    prefix = uuid.uuid4().hex
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("PRICE_CACHE_KEY_PREFIX", prefix)
    settings.REDIS_URL = url
    settings.CACHES = {
        **settings.CACHES,
        "prices": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": prefix,
        },
    }
    return url
