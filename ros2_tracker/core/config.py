"""Validated configuration dataclasses: one source of truth for defaults, descriptions and ranges.

Every component (tracker, nodes, models) declares a frozen dataclass whose fields are made with
:func:`param`. The field metadata carries the description, the unit and the valid range; the
dataclass validates itself in ``__post_init__`` and raises :class:`ConfigError` naming the field.
ROS nodes declare their parameters from the same metadata (see ``ros2_tracker.nodes.params``) and
the CLI reads the same YAML files (``config/*.yaml``, ``/**: ros__parameters:`` form).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np

__all__ = ["ConfigBase", "ConfigError", "FieldSpec", "param"]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and its valid range."""


def param(
    default: Any,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
    unit: str = "",
    read_only: bool = False,
) -> Any:
    """Declare a config field with its default, description, unit and valid range (inclusive)."""
    meta = {"description": description, "low": low, "high": high, "choices": choices, "unit": unit,
            "read_only": read_only}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class FieldSpec:
    """Description of one config field, as used for ROS parameter descriptors and docs."""

    name: str
    type: type
    default: Any
    description: str
    low: float | None
    high: float | None
    choices: tuple[str, ...] | None
    unit: str
    read_only: bool

    def range_text(self) -> str:
        """Human-readable valid range, e.g. ``[0, 1]`` or ``one of iou, centre``."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.low is None and self.high is None:
            return "any " + self.type.__name__
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"[{lo}, {hi}]"

    def validate(self, value: Any) -> Any:
        """``value`` checked (and converted) as the field takes it; ConfigError naming the field otherwise.
        For an option that sets one field (a command-line flag) without building the whole config."""
        return _validate(self, value)


T = TypeVar("T", bound="ConfigBase")


@dataclass(frozen=True)
class ConfigBase:
    """Base class of validated, frozen config dataclasses."""

    _section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for spec in self.specs():
            object.__setattr__(self, spec.name, _validate(spec, getattr(self, spec.name)))
        self.check()

    def check(self) -> None:
        """Cross-field checks; subclasses override and raise :class:`ConfigError`."""

    @classmethod
    def specs(cls) -> list[FieldSpec]:
        """One :class:`FieldSpec` per field, in declaration order."""
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            if f.name.startswith("_"):
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
            m = f.metadata
            out.append(FieldSpec(f.name, _base_type(hints[f.name]), default, m.get("description", ""),
                                 m.get("low"), m.get("high"), m.get("choices"), m.get("unit", ""),
                                 m.get("read_only", False)))
        return out

    @classmethod
    def from_dict(cls: type[T], values: Mapping[str, Any], *, ignore_unknown: bool = False) -> T:
        """Build from a mapping; unknown keys raise :class:`ConfigError` unless ``ignore_unknown``."""
        names = {s.name for s in cls.specs()}
        unknown = sorted(set(values) - names)
        if unknown and not ignore_unknown:
            raise ConfigError(f"{cls.__name__}: unknown parameter(s) {', '.join(unknown)}; "
                              f"valid: {', '.join(sorted(names))}")
        return cls(**{k: v for k, v in values.items() if k in names})

    def replace(self: T, **changes: Any) -> T:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of all fields."""
        return {s.name: getattr(self, s.name) for s in self.specs()}


def _base_type(hint: Any) -> type:
    origin = typing.get_origin(hint)
    if origin is not None:
        return origin  # e.g. list[float] -> list
    return hint if isinstance(hint, type) else object


def _validate(spec: FieldSpec, value: Any) -> Any:
    check = {bool: _check_bool, int: _check_number, float: _check_number, str: _check_str,
             list: _check_list}.get(spec.type)
    return value if check is None else check(spec, value)


def _check_bool(spec: FieldSpec, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{spec.name}: expected true/false, got {value!r}")
    return bool(value)


def _check_number(spec: FieldSpec, value: Any) -> float | int:
    name = spec.name
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):  # numpy scalars too
        raise ConfigError(f"{name}: expected a number in {spec.range_text()}, got {value!r}")
    if spec.type is int:
        if not isinstance(value, numbers.Integral) and not float(value).is_integer():
            raise ConfigError(f"{name}: expected an integer in {spec.range_text()}, got {value!r}")
        value = operator.index(value) if isinstance(value, numbers.Integral) else int(float(value))
    else:
        value = float(value)
        if math.isnan(value):
            raise ConfigError(f"{name}: NaN is not allowed (valid: {spec.range_text()})")
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        raise ConfigError(f"{name}: {value!r} is out of range {spec.range_text()}")
    return value


def _check_str(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{spec.name}: expected a string, got {value!r}")
    if spec.choices and value not in spec.choices:
        raise ConfigError(f"{spec.name}: {value!r} is not {spec.range_text()}")
    return value


def _check_list(spec: FieldSpec, value: Any) -> list:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{spec.name}: expected a list, got {value!r}")
    return list(value)
