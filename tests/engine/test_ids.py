"""Engine ids are RFC 4122 version-5 UUIDs of the session and the row's kind, tick and key."""

from __future__ import annotations

import pickle
import uuid

from hypothesis import given
from hypothesis import strategies as st

from paper_trading.engine.ids import IdFactory


@given(
    namespace=st.uuids(),
    kind=st.sampled_from(["thought", "trade", "position"]),
    tick=st.integers(min_value=0, max_value=10**12),
    key=st.text(max_size=20),
)
def test_ids_are_uuid5_of_the_session(namespace: uuid.UUID, kind: str, tick: int, key: str) -> None:
    # Rows written before the ids were derived faster must keep their ids after a restart.
    made = IdFactory(namespace).make(kind, tick, key)
    assert made == uuid.uuid5(namespace, f"{kind}:{tick}:{key}")
    assert made.version == 5


def test_factories_of_different_sessions_do_not_share_ids() -> None:
    first, second = IdFactory(uuid.UUID(int=1)), IdFactory(uuid.UUID(int=2))
    assert first.make("trade", 3, "1") != second.make("trade", 3, "1")
    assert first.make("trade", 3, "1") == IdFactory(uuid.UUID(int=1)).make("trade", 3, "1")
    # The cached namespace hash is not part of the factory: it still pickles.
    assert pickle.loads(pickle.dumps(first)) == first
