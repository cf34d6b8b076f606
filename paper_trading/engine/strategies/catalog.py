"""Finding a strategy class by name: a built-in's short name, a dotted path, or a file.

`--strategy ma_crossover`, `--strategy mypkg.strategies.Breakout` and
`--strategy ./my_strategy.py:Breakout` all work, so users keep their strategies in their own
modules without touching this package.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from paper_trading.engine.strategies.base import Strategy
from paper_trading.engine.strategies.exit_all import ExitAll
from paper_trading.engine.strategies.intel_slider import IntelSliderEngine
from paper_trading.engine.strategies.ma_crossover import MACrossover
from paper_trading.engine.strategies.rsi_reversion import RSIReversion

BUILTIN: Mapping[str, type[Strategy]] = {
    cls.name: cls for cls in (IntelSliderEngine, MACrossover, RSIReversion, ExitAll)
}


def load_strategy_class(spec: str) -> type[Strategy]:
    """The Strategy subclass `spec` names, or a ValueError saying what was wrong with it."""
    if spec in BUILTIN:
        return BUILTIN[spec]
    if ":" in spec:
        path_text, _, class_name = spec.rpartition(":")
        found = getattr(_module_from_file(Path(path_text)), class_name, None)
    else:
        module_name, _, class_name = spec.rpartition(".")
        if not module_name:
            names = ", ".join(sorted(BUILTIN))
            raise ValueError(
                f"unknown strategy {spec!r}: use one of {names}, a dotted path "
                "(package.module.Class) or a file (path/to/file.py:Class)"
            )
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"cannot import {module_name!r} for strategy {spec!r}: {exc}") from exc
        found = getattr(module, class_name, None)
    if not (isinstance(found, type) and issubclass(found, Strategy)):
        raise ValueError(f"{spec!r} does not name a Strategy subclass")
    return found


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """Command-line `NAME=VALUE` pairs as a dict; `from_params` converts and checks the values."""
    params: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected NAME=VALUE, got {item!r}")
        params[name.strip()] = value.strip()
    return params


def portable_spec(spec: str) -> str:
    """`spec` checked, with a file's path made absolute so another process or directory finds it."""
    load_strategy_class(spec)
    if spec in BUILTIN or ":" not in spec:
        return spec
    path_text, _, class_name = spec.rpartition(":")
    return f"{Path(path_text).resolve()}:{class_name}"


def build_strategy(spec: str, params: Mapping[str, object] | None = None) -> Strategy:
    """Load `spec` and build it from `params` (validated against its declared parameters)."""
    return load_strategy_class(spec).from_params(params)


class StrategyChoiceError(ValueError):
    """A strategy or its parameters are unusable; `field` says which of the two."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class StrategyChoice:
    #: The spec with a file's path made absolute (workers may run elsewhere).
    spec: str
    #: Every declared parameter's value, defaults filled in: what the session stores.
    params: dict[str, int | float]
    #: The Intel slider's level when that is the strategy, else the level given.
    intel_level: int
    strategy: Strategy


def resolve_strategy(
    spec: str, params: Mapping[str, object], intel_level: int = 5
) -> StrategyChoice:
    """Check a strategy choice before a session is opened for it.

    `intel_level` is intel_slider's `level` unless `params` sets it, so `--intel` keeps working.
    """
    try:
        spec = portable_spec(spec)
    except ValueError as exc:
        raise StrategyChoiceError("strategy", str(exc)) from None
    given = dict(params)
    if spec == IntelSliderEngine.name:
        given.setdefault("level", intel_level)
    try:
        strategy = build_strategy(spec, given)
    except (TypeError, ValueError) as exc:
        raise StrategyChoiceError("strategy_params", str(exc)) from None
    level = strategy.level if isinstance(strategy, IntelSliderEngine) else intel_level
    return StrategyChoice(spec, type(strategy).resolve_params(given), level, strategy)


def _module_from_file(path: Path) -> object:
    if not path.is_file():
        raise ValueError(f"strategy file {str(path)!r} does not exist")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"user_strategy_{digest}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    # Registered before running so dataclasses and pickling (parallel optimize) can find it.
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: a syntax error, a failed import, anything
        del sys.modules[name]
        raise ValueError(f"cannot load {str(path)!r}: {_load_error(exc, path)}") from exc
    return module


def _load_error(exc: Exception, path: Path) -> str:
    """An error running a user's strategy file as one line: what went wrong, and on which of
    the file's lines (a command prints this instead of a traceback)."""
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__} at line {exc.lineno}: {exc.msg}"
    ours = path.resolve()
    frames = traceback.extract_tb(exc.__traceback__)
    lines = [f.lineno for f in frames if Path(f.filename).resolve() == ours]
    return f"{type(exc).__name__}" + (f" at line {lines[-1]}" if lines else "") + f": {exc}"
