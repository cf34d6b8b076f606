"""Deterministic identifiers: re-running a tick after a crash names the same rows again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class IdFactory:
    #: The session's id; every id the engine makes is derived from it.
    namespace: uuid.UUID

    def make(self, kind: str, tick: int, key: str) -> uuid.UUID:
        return uuid.uuid5(self.namespace, f"{kind}:{tick}:{key}")
