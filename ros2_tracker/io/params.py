"""ROS 2 parameter YAML files (``config/*.yaml``) read into the core's config dataclasses.

The same files serve the nodes (``--params-file``) and the CLI (``--config``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ros2_tracker.core.config import ConfigBase, ConfigError

__all__ = ["load_config", "load_ros_yaml"]

C = TypeVar("C", bound=ConfigBase)

# parameters every rclpy node has or accepts from a file: not ours to check
_ROS_PARAMS = {"use_sim_time", "start_type_description_service"}
_ROS_PREFIXES = ("qos_overrides.",)


def load_config(cls: type[C], path: str | Path | None, *, allowed_extra: set[str] | None = None,
                node: str | None = None, **overrides: Any) -> C:
    """Build ``cls`` from a parameter file (or defaults when ``path`` is None) plus overrides.

    Keys that are neither fields of ``cls`` nor in ``allowed_extra`` (parameters of the node that
    owns the file) raise :class:`ConfigError`, so a typo never passes silently; the parameters every
    ROS node has (``use_sim_time``, ``qos_overrides.*``) pass. ``node``: read only the sections that
    apply to that node name (see :func:`load_ros_yaml`).
    """
    values = load_ros_yaml(path, node=node) if path is not None else {}
    names = {s.name for s in cls.specs()}
    values = {k: v for k, v in values.items()
              if k in names or not (k in _ROS_PARAMS or k.startswith(_ROS_PREFIXES))}
    unknown = sorted(set(values) - names - (allowed_extra or set()))
    if unknown:
        raise ConfigError(f"{path}: unknown parameter(s) {', '.join(unknown)}")
    values = {k: v for k, v in values.items() if k in names}
    values.update(overrides)
    return cls.from_dict(values)


class _RosParameterLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading numbers as rcl's parameter-file parser does: ``1e3`` and ``5E-2`` are
    floats (YAML 1.1, PyYAML's schema, wants a dot and would give strings, which a node reads as 1000.0)."""


_RosParameterLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def load_ros_yaml(path: str | Path, node: str | None = None) -> dict[str, Any]:
    """Merge the ``ros__parameters`` blocks of a ROS 2 parameter file into one flat dict, in file order.

    Accepts the ``/**: ros__parameters: {...}``, ``node_name: ros__parameters: {...}``,
    ``/ns/node_name: ...`` and nested ``/ns: node_name: ros__parameters: ...`` forms; a plain mapping
    without ``ros__parameters`` is taken as is. Nested dicts are flattened with dots. With ``node`` (a
    fully qualified node name such as ``/tracker``) only the blocks rcl gives that node are read
    (``tracker``, ``/tracker``, ``/**/tracker``, ``/**``; not ``/cam1/tracker``); a file with blocks,
    none of them for ``node``, raises ConfigError.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        doc = yaml.load(p.read_text(encoding="utf-8"), Loader=_RosParameterLoader) or {}  # a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not UTF-8 text") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {p} must contain a mapping")
    found = list(_parameter_blocks(doc, ()))
    if not found:
        found = [((), doc)]
    blocks = [b for keys, b in found if node is None or not keys or _applies(keys, node)]
    if not blocks:
        names = ", ".join("/".join(keys) for keys, _ in found)
        raise ConfigError(f"config file {p}: no ros__parameters section applies to node '{node}' "
                          f"(sections: {names}); name it {node}: or /**:")
    merged: dict[str, Any] = {}
    for block in blocks:
        merged.update(_flatten(block))
    return merged


def _parameter_blocks(d: Mapping[str, Any], keys: tuple[str, ...]):
    """(name path, parameters) of every ``ros__parameters`` block, nested namespace forms included."""
    for k, v in d.items():
        if not isinstance(v, dict):
            continue
        path = keys + tuple(t for t in str(k).split("/") if t)
        block = v.get("ros__parameters", False)
        if block is None or isinstance(block, dict):  # None: the key with nothing under it, an empty block
            yield path, block or {}
        elif len(keys) < 8:
            yield from _parameter_blocks(v, path)


def _applies(keys: tuple[str, ...], node: str) -> bool:
    """Whether the section ``keys`` (its name's parts) applies to the node of fully qualified name ``node``,
    as rcl matches them: ``**`` any number of name parts (none too), ``*`` one."""
    parts = []
    for key in keys:
        if key == "**":
            parts.append("(?:/[^/]+)*")
        else:
            parts.append("/" + "[^/]*".join(re.escape(piece) for piece in key.split("*")))
    return re.fullmatch("".join(parts), node) is not None


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


