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
    expected = uuid.uuid5(namespace, f"{kind}:{tick}:{key}")
    assert made == expected
    assert made.version == 5
    # Built without UUID's constructor, yet the same in every way one can look at it.
    assert (made.is_safe, hash(made), str(made)) == (
        expected.is_safe,
        hash(expected),
        str(expected),
    )
    assert pickle.loads(pickle.dumps(made)) == made


def test_factories_of_different_sessions_do_not_share_ids() -> None:
    first, second = IdFactory(uuid.UUID(int=1)), IdFactory(uuid.UUID(int=2))
    assert first.make("trade", 3, "1") != second.make("trade", 3, "1")
    assert first.make("trade", 3, "1") == IdFactory(uuid.UUID(int=1)).make("trade", 3, "1")
    # The cached namespace hash is not part of the factory: it still pickles.
    assert pickle.loads(pickle.dumps(first)) == first
