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
from collections.abc import Mapping
from pathlib import Path

from paper_trading.engine.strategies.base import Strategy
from paper_trading.engine.strategies.intel_slider import IntelSliderEngine

BUILTIN: Mapping[str, type[Strategy]] = {
    IntelSliderEngine.name: IntelSliderEngine,
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


def build_strategy(spec: str, params: Mapping[str, object] | None = None) -> Strategy:
    """Load `spec` and build it from `params` (validated against its declared parameters)."""
    return load_strategy_class(spec).from_params(params)


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
    module_spec.loader.exec_module(module)
    return module
