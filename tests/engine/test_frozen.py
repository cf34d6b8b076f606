"""`set_at_once` keeps a frozen dataclass what the dataclass made it, only cheaper to build."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import InitVar, dataclass, field

import pytest

from paper_trading.engine.events import TradeRecord
from paper_trading.engine.frozen import set_at_once


@dataclass(frozen=True)
class Plain:
    number: int
    label: str = "x"
    items: list[int] = field(default_factory=list)
    fixed: int = field(default=5, init=False)
    made: list[int] = field(default_factory=lambda: [7], init=False)
    flag: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        if self.number < 0:
            raise ValueError("number must not be negative")


@set_at_once
@dataclass(frozen=True)
class Fast(Plain):
    pass


def _same(fast: Fast, plain: Plain) -> None:
    assert repr(fast).removeprefix("Fast") == repr(plain).removeprefix("Plain")
    assert vars(fast) == vars(plain)
    assert list(vars(fast)) == list(vars(plain))


def test_defaults_factories_and_keywords_as_the_dataclass_sets_them() -> None:
    _same(Fast(1), Plain(1))
    _same(Fast(2, "y", [3], flag=True), Plain(2, "y", [3], flag=True))
    _same(Fast(number=4, items=[1], label="z"), Plain(number=4, items=[1], label="z"))
    assert Fast(1).items is not Fast(1).items  # a fresh list each time, as the factory makes


def test_signature_post_init_and_argument_errors_are_the_dataclass_s() -> None:
    assert list(inspect.signature(Fast).parameters) == list(inspect.signature(Plain).parameters)
    with pytest.raises(ValueError, match="negative"):
        Fast(-1)
    with pytest.raises(TypeError):
        Fast(1, "y", [], True)  # type: ignore[call-arg]  # flag is keyword-only
    with pytest.raises(TypeError):
        Fast()  # type: ignore[call-arg]


def test_still_immutable_equal_and_copyable() -> None:
    value = Fast(3, "a", flag=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.number = 4  # type: ignore[misc]
    assert value == Fast(3, "a", flag=True)
    assert value != Fast(3, "b", flag=True)
    assert dataclasses.replace(value, label="b") == Fast(3, "b", flag=True)
    assert pickle.loads(pickle.dumps(value)) == value == copy.deepcopy(value)


def test_engine_records_compare_as_before() -> None:
    fields = {f.name: f"{f.name}-value" for f in dataclasses.fields(TradeRecord)}
    record = TradeRecord(**fields)  # type: ignore[arg-type]
    again = TradeRecord(**fields)  # type: ignore[arg-type]
    assert record == again
    assert hash(record) == hash(again)
    assert dataclasses.asdict(record) == fields


def test_refuses_what_it_cannot_build_faithfully() -> None:
    @dataclass
    class Mutable:
        number: int

    @dataclass(frozen=True, slots=True)
    class Slotted:
        number: int

    @dataclass(frozen=True)
    class WithInitVar:
        number: int
        scale: InitVar[int] = 1

    for cls in (Mutable, Slotted, WithInitVar):
        with pytest.raises(TypeError):
            set_at_once(cls)
