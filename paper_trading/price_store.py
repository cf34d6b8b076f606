"""The shared store behind the price cache: Django's cache plus a machine-wide lock.

Without Redis the cache is a folder of files and the lock an `flock` on a file in it, which
every process on the machine sees; with `REDIS_URL` both live in Redis and span machines.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import caches

from paper_trading.engine.prices.feed import PriceUnavailableError


class PriceLockTimeoutError(PriceUnavailableError):
    """Another bot held the fetch lock too long: no prices this tick, said as such."""


class DjangoSharedStore:
    def __init__(self, alias: str = "prices") -> None:
        self.cache = caches[alias]

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        return dict(self.cache.get_many(list(keys)))

    def set_many(self, values: Mapping[str, Any], timeout: float) -> None:
        self.cache.set_many(dict(values), timeout=timeout)

    @contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        if settings.REDIS_URL:
            import redis  # here: a process without Redis (most bots) never loads its client

            client = redis.Redis.from_url(settings.REDIS_URL)
            try:
                with client.lock(f"lock:{name}", timeout=timeout, blocking_timeout=timeout):
                    yield
            except redis.exceptions.LockError as exc:
                raise PriceLockTimeoutError(f"waited {timeout} s for {name}") from exc
            finally:
                client.close()
            return
        with _file_lock(Path(settings.PRICE_CACHE_DIR) / f"{name.replace(':', '_')}.lock", timeout):
            yield


@contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with path.open("a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PriceLockTimeoutError(f"waited {timeout} s for {path.name}") from None
                time.sleep(0.005)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
