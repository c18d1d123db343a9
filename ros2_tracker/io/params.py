"""ROS 2 parameter YAML files (``config/*.yaml``) read into the core's config dataclasses.

The same files serve the nodes (``--params-file``) and the CLI (``--config``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ros2_tracker.core.config import ConfigBase, ConfigError

__all__ = ["load_config", "load_ros_yaml"]

C = TypeVar("C", bound=ConfigBase)


def load_config(cls: type[C], path: str | Path | None, *, allowed_extra: set[str] | None = None,
                **overrides: Any) -> C:
    """Build ``cls`` from a parameter file (or defaults when ``path`` is None) plus overrides.

    Keys that are neither fields of ``cls`` nor in ``allowed_extra`` (parameters of the node that
    owns the file) raise :class:`ConfigError`, so a typo never passes silently.
    """
    values = load_ros_yaml(path) if path is not None else {}
    names = {s.name for s in cls.specs()}
    unknown = sorted(set(values) - names - (allowed_extra or set()))
    if unknown:
        raise ConfigError(f"{path}: unknown parameter(s) {', '.join(unknown)}")
    values = {k: v for k, v in values.items() if k in names}
    values.update(overrides)
    return cls.from_dict(values)


def load_ros_yaml(path: str | Path) -> dict[str, Any]:
    """Merge every ``ros__parameters`` block of a ROS 2 parameter file into one flat dict.

    Accepts the ``/**: ros__parameters: {...}`` and ``node_name: ros__parameters: {...}`` forms;
    a plain mapping without ``ros__parameters`` is taken as is. Nested dicts are flattened with dots.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not UTF-8 text") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {p} must contain a mapping")
    blocks = [v["ros__parameters"] for v in doc.values()
              if isinstance(v, dict) and isinstance(v.get("ros__parameters"), dict)]
    if not blocks:
        blocks = [doc]
    merged: dict[str, Any] = {}
    for block in blocks:
        merged.update(_flatten(block))
    return merged


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


