"""A cheaper `__init__` for the frozen dataclasses a backtest builds by the hundred thousand.

A frozen dataclass's own `__init__` must get past its `__setattr__`, so it calls
`object.__setattr__` once per field: most of what building a trade record or a snapshot costs.
`set_at_once` replaces it with one that stores the instance's whole `__dict__` in a single call.
The signature, defaults, default factories, `__post_init__`, equality, hash, repr and
immutability stay the dataclass's own.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

T = TypeVar("T")


class _NoValue:
    """Stands for an argument left out, so its field's default factory makes the value."""

    def __repr__(self) -> str:
        return "<factory>"


_NO_VALUE = _NoValue()


def set_at_once(cls: type[T]) -> type[T]:
    """Give a frozen dataclass (decorated below this) the single-call `__init__`."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" in vars(cls):
        raise TypeError(f"{cls.__name__} must be a frozen dataclass without slots")
    namespace: dict[str, Any] = {"_set": object.__setattr__, "_no_value": _NO_VALUE}
    positional: list[str] = []
    keyword: list[str] = []
    values: list[str] = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = field.name
        if field.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = field.default
            default, made = f"=_default_{name}", f"_default_{name}"
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = field.default_factory
            default, made = "=_no_value", f"_factory_{name}()"
        else:
            default, made = "", ""
        if not field.init:
            # As the dataclass does: a plain default stays a class attribute.
            if default == "=_no_value":
                values.append(f"{name!r}: {made}")
            continue
        (keyword if field.kw_only else positional).append(name + default)
        given = name if default != "=_no_value" else f"{made} if {name} is _no_value else {name}"
        values.append(f"{name!r}: {given}")
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    body = f"    _set(self, '__dict__', {{{', '.join(values)}}})\n"
    if hasattr(cls, "__post_init__"):
        body += "    self.__post_init__()\n"
    exec(f"def __init__({signature}):\n{body}", namespace)
    init = namespace["__init__"]
    # InitVar pseudo-fields (arguments that are not fields) are not supported: refuse them.
    if list(inspect.signature(init).parameters) != list(inspect.signature(cls.__init__).parameters):
        raise TypeError(f"{cls.__name__}'s __init__ takes arguments that are not fields")
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
