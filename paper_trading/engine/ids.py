"""Deterministic identifiers: re-running a tick after a crash names the same rows again."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from functools import lru_cache

#: RFC 4122 version 5: the version nibble and the variant bits over a SHA-1 digest.
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (5 << 76) | (0x8000 << 48)


@lru_cache(maxsize=256)
def _hashed_namespace(namespace: int) -> hashlib._Hash:
    """SHA-1 over a namespace's bytes, copied for each id (uuid5 hashes them every time)."""
    return hashlib.sha1(namespace.to_bytes(16, "big"))


def _uuid(value: int) -> uuid.UUID:
    """`uuid.UUID(int=value)` for a value known to be 128 bits: the constructor's argument
    checks cost more than the hashing, and a backtest makes an id per thought and trade."""
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


@dataclass(frozen=True)
class IdFactory:
    #: The session's id; every id the engine makes is derived from it.
    namespace: uuid.UUID

    def make(self, kind: str, tick: int, key: str) -> uuid.UUID:
        """`uuid.uuid5(namespace, f"{kind}:{tick}:{key}")`, without rehashing the namespace."""
        h = _hashed_namespace(self.namespace.int).copy()
        h.update(f"{kind}:{tick}:{key}".encode())
        return _uuid(int.from_bytes(h.digest()[:16], "big") & _CLEAR | _SET)
