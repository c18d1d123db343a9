"""Run a graph of ros2_tracker nodes as processes, without ROS 2's launch system (which is not on PyPI).

Two ROS-free halves:

* :func:`parse_launch_file` reads one of our ``launch/*.launch.py`` files **statically** with :mod:`ast`
  (the file is never imported or run) into a :class:`LaunchFile`: its declared arguments and its node
  declarations. :meth:`LaunchFile.node_specs` evaluates them for ``name:=value`` arguments into
  :class:`NodeSpec` objects, so ``ros2-tracker launch pipeline`` starts the same nodes with the same
  parameter files, parameters and remappings as ``ros2 launch ros2_tracker pipeline.launch.py``. Only the
  constructs our launch files use are understood (``DeclareLaunchArgument``, ``LaunchConfiguration``,
  ``Node``, ``IfCondition``/``UnlessCondition``, ``GroupAction``, ``ParameterValue``, ``Shutdown``,
  ``os.path.join``, ``PathJoinSubstitution``, ``get_package_share_directory``, module constants and helper
  functions); anything else raises :class:`LaunchFileError` naming the line.
* :func:`launch_graph` starts every :class:`NodeSpec` as its own process
  (``python -m ros2_tracker.nodes <module> --ros-args -r __node:=NAME -r __ns:=NS --params-file F -p k:=v
  -r from:=to``) and returns a :class:`Supervisor`, which prefixes each output line with the node's name,
  forwards SIGINT/SIGTERM to every node, shuts them down with SIGINT, then SIGTERM, then SIGKILL, and
  reports their exit codes.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import yaml

__all__ = [
    "PACKAGE",
    "PRIVATE_DOMAIN_IDS",
    "LaunchArgument",
    "LaunchArgumentError",
    "LaunchFile",
    "LaunchFileError",
    "NodeDeclaration",
    "NodeSpec",
    "Supervisor",
    "fastdds_profile",
    "find_executable",
    "launch_graph",
    "node_environment",
    "package_share_directory",
    "parse_launch_arguments",
    "parse_launch_file",
    "private_domain_id",
]

PACKAGE = "ros2_tracker"
NODES_PACKAGE = "ros2_tracker.nodes"


class LaunchFileError(ValueError):
    """A launch file uses a construct the static reader does not understand, or is malformed."""


class LaunchArgumentError(ValueError):
    """A ``name:=value`` launch argument is unknown, malformed or out of its choices."""


# ------------------------------------------------------------------------------------------ node specs
@dataclass(frozen=True)
class NodeSpec:
    """One process of a graph.

    Attributes:
        name: node name (``-r __node:=name``); also the prefix of its output lines.
        module: node module under ``ros2_tracker.nodes`` (e.g. ``tracker_node``); empty for an external
            ``executable``.
        params_files: ROS 2 parameter YAML files, in order (later files override earlier ones).
        params: parameter overrides (``-p k:=v``, applied after the files), typed Python values.
        remaps: ``(from, to)`` topic remappings.
        namespace: ``/ns`` or empty.
        arguments: command-line arguments before ``--ros-args``.
        executable: an external program (e.g. ``rviz2``) run instead of a node module.
        shutdown_on_exit: when this process exits, shut the whole graph down (e.g. the replay).
    """

    name: str
    module: str
    params_files: tuple[Path, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    remaps: tuple[tuple[str, str], ...] = ()
    namespace: str = ""
    arguments: tuple[str, ...] = ()
    executable: str = ""
    shutdown_on_exit: bool = False

    def with_params(self, **params: Any) -> NodeSpec:
        """A copy with more (or replaced) parameter overrides."""
        return replace(self, params={**self.params, **params})

    def command(self, python: str | None = None) -> list[str]:
        """The process's argv."""
        if self.executable:
            head = [self.executable]
        else:
            head = [python or sys.executable, "-m", NODES_PACKAGE, self.module]  # see nodes/__main__.py
        ros = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            ros += ["-r", f"__ns:={self.namespace}"]
        for f in self.params_files:
            ros += ["--params-file", str(f)]
        for k, v in self.params.items():
            ros += ["-p", f"{k}:={param_literal(v)}"]
        for src, dst in self.remaps:
            ros += ["-r", f"{src}:={dst}"]
        return [*head, *self.arguments, *ros]


def param_literal(value: Any) -> str:
    """A parameter value as rcl's ``-p name:=value`` parses it (YAML): JSON is YAML, quoting included."""
    if isinstance(value, (list, tuple)) and not value:
        raise LaunchArgumentError("an empty list parameter has no type on the command line")
    return json.dumps(list(value) if isinstance(value, tuple) else value)


# ------------------------------------------------------------------------------------- static reading
@dataclass(frozen=True)
class LaunchArgument:
    """A ``DeclareLaunchArgument``: name, default (None: required), description, allowed values."""

    name: str
    default: Any
    description: str = ""
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class _Config:
    """``LaunchConfiguration(name)``."""

    name: str


@dataclass(frozen=True)
class _Join:
    """``os.path.join(...)`` / ``PathJoinSubstitution([...])`` of symbolic parts."""

    parts: tuple[Any, ...]


@dataclass(frozen=True)
class _Share:
    """``get_package_share_directory(package)``."""

    package: Any


@dataclass(frozen=True)
class _Condition:
    """``IfCondition(expr)`` (negate False) or ``UnlessCondition(expr)`` (negate True)."""

    expr: Any
    negate: bool


@dataclass(frozen=True)
class _ParamValue:
    """``ParameterValue(expr, value_type=T)``."""

    expr: Any
    value_type: type | None


@dataclass(frozen=True)
class _Shutdown:
    """``Shutdown(...)`` as a process's ``on_exit`` action."""


@dataclass(frozen=True)
class _Group:
    """``GroupAction(actions, condition=...)``."""

    actions: tuple[Any, ...]
    condition: _Condition | None


@dataclass(frozen=True)
class NodeDeclaration:
    """A ``launch_ros.actions.Node(...)`` as written (values may still be symbolic).

    Attributes:
        package, executable, name, namespace: as given (``name`` None: the executable's name).
        parameters: the ``parameters=[...]`` items (file paths and dicts).
        remappings: ``(from, to)`` pairs.
        arguments: command-line arguments.
        conditions: the node's condition and those of enclosing groups (all must hold).
        shutdown_on_exit: ``on_exit=Shutdown(...)``.
        lineno: line of the ``Node(`` call.
    """

    package: Any
    executable: Any
    name: Any
    namespace: Any
    parameters: tuple[Any, ...]
    remappings: tuple[tuple[Any, Any], ...]
    arguments: tuple[Any, ...]
    conditions: tuple[_Condition, ...]
    shutdown_on_exit: bool
    lineno: int


_BUILTIN_TYPES = {"str": str, "float": float, "int": int, "bool": bool}


def _is_simple_assign(stmt: ast.stmt) -> bool:
    """``name = expression``."""
    return isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)


class _Reader:
    """Evaluates the restricted subset of Python our launch files are written in, symbolically."""

    def __init__(self, tree: ast.Module, path: Path) -> None:
        self.path = path
        self.imports: dict[str, str] = {}
        self.constants: dict[str, Any] = {}
        self.functions: dict[str, ast.FunctionDef] = {}
        self._depth = 0
        for stmt in tree.body:
            self._module_statement(stmt)

    def _error(self, node: ast.AST, what: str) -> LaunchFileError:
        return LaunchFileError(f"{self.path}:{getattr(node, 'lineno', '?')}: {what} (not understood by the "
                               "static launch-file reader; see ros2_tracker/launching.py)")

    def _module_statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                self.imports[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(stmt, ast.ImportFrom):
            for a in stmt.names:
                self.imports[a.asname or a.name] = f"{stmt.module}.{a.name}"
        elif isinstance(stmt, ast.FunctionDef):
            self.functions[stmt.name] = stmt
        elif _is_simple_assign(stmt):
            self.constants[stmt.targets[0].id] = self.eval(stmt.value, {})
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            pass  # docstring
        else:
            raise self._error(stmt, f"module-level {type(stmt).__name__}")

    def call_function(self, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        fn = self.functions[name]
        if self._depth > 20:
            raise self._error(node, "recursion")
        params = [a.arg for a in fn.args.args]
        defaults = fn.args.defaults
        scope: dict[str, Any] = {}
        for p, d in zip(params[len(params) - len(defaults):], defaults, strict=True):
            scope[p] = self.eval(d, {})
        if len(args) > len(params) or fn.args.vararg or fn.args.kwarg or fn.args.kwonlyargs:
            raise self._error(node, f"call of {name}() with an unsupported signature")
        scope.update(zip(params, args, strict=False))
        scope.update(kwargs)
        missing = [p for p in params if p not in scope]
        if missing:
            raise self._error(node, f"{name}() misses argument(s) {missing}")
        self._depth += 1
        try:
            for stmt in fn.body:
                if isinstance(stmt, ast.Return):
                    return self.eval(stmt.value, scope) if stmt.value is not None else None
                if _is_simple_assign(stmt):
                    scope[stmt.targets[0].id] = self.eval(stmt.value, scope)
                elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    continue
                else:
                    raise self._error(stmt, f"{type(stmt).__name__} statement in {name}()")
        finally:
            self._depth -= 1
        return None

    def qualified(self, node: ast.expr) -> str | None:
        """``a.b.c`` of a Name/Attribute chain with the first part mapped through the imports."""
        if isinstance(node, ast.Name):
            return self.imports.get(node.id, node.id if node.id in self.functions else None)
        if isinstance(node, ast.Attribute):
            base = self.qualified(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def eval(self, node: ast.expr | None, scope: dict[str, Any]) -> Any:  # noqa: C901 - one case per node type
        if node is None:
            return None
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            out: list[Any] = []
            for e in node.elts:
                if isinstance(e, ast.Starred):
                    out.extend(self.eval(e.value, scope))
                else:
                    out.append(self.eval(e, scope))
            return out if isinstance(node, ast.List) else tuple(out)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise self._error(node, "** in a dict")
            pairs = zip(node.keys, node.values, strict=True)
            return {self.eval(k, scope): self.eval(v, scope) for k, v in pairs}
        if isinstance(node, ast.Name):
            for table in (scope, self.constants):
                if node.id in table:
                    return table[node.id]
            if node.id in _BUILTIN_TYPES:
                return _BUILTIN_TYPES[node.id]
            raise self._error(node, f"unknown name {node.id!r}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.eval(node.left, scope), self.eval(node.right, scope)
            if isinstance(left, list) and isinstance(right, list):
                return left + right
            if isinstance(left, str) and isinstance(right, str):
                return left + right
            raise self._error(node, "'+' of anything but two lists or two literal strings")
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        raise self._error(node, f"expression {type(node).__name__}")

    def _call(self, node: ast.Call, scope: dict[str, Any]) -> Any:
        name = self.qualified(node.func)
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise self._error(node, "*args/**kwargs in a call")
        args = [self.eval(a, scope) for a in node.args]
        kwargs = {k.arg: self.eval(k.value, scope) for k in node.keywords if k.arg}
        if name in self.functions:
            return self.call_function(name, args, kwargs, node)
        handler = _CALLS.get(name or "")
        if handler is None:
            shown = name or ast.unparse(node.func)
            raise self._error(node, f"call of {shown}()")
        try:
            return handler(self, node, args, kwargs)
        except (TypeError, KeyError, IndexError) as exc:
            raise self._error(node, f"bad arguments to {name}(): {exc}") from None


def _c_share(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    return _Share(args[0] if args else kw["package_name"])


def _c_join(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    return _Join(tuple(args))


def _c_path_join(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    return _Join(tuple(args[0] if args else kw["substitutions"]))


def _c_description(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    return list(args[0] if args else kw.get("initial_entities", []))


def _c_declare(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    name = args[0] if args else kw["name"]
    choices = kw.get("choices")
    return LaunchArgument(name=name, default=kw.get("default_value"), description=kw.get("description", ""),
                          choices=tuple(choices) if choices is not None else None)


def _c_config(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    if len(args) > 1 or "default" in kw:
        raise r._error(node, "LaunchConfiguration with a default (declare the argument instead)")
    return _Config(args[0] if args else kw["variable_name"])


def _c_if(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    return _Condition(args[0] if args else kw["predicate_expression"], negate=False)


def _c_unless(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    return _Condition(args[0] if args else kw["predicate_expression"], negate=True)


def _c_param_value(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    vt = kw.get("value_type")
    if vt is not None and vt not in _BUILTIN_TYPES.values():
        raise r._error(node, "ParameterValue value_type other than str/float/int/bool")
    return _ParamValue(args[0] if args else kw["value"], vt)


def _c_shutdown(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    return _Shutdown()


def _c_group(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    extra = set(kw) - {"actions", "condition", "scoped", "forwarding"}
    if extra:
        raise r._error(node, f"GroupAction arguments {sorted(extra)}")
    return _Group(tuple(args[0] if args else kw["actions"]), kw.get("condition"))


_NODE_KEYWORDS = {"package", "executable", "name", "namespace", "parameters", "remappings", "arguments",
                  "condition", "on_exit", "output", "emulate_tty", "respawn", "respawn_delay"}


def _c_node(r: _Reader, node: ast.Call, args: list[Any], kw: dict[str, Any]) -> Any:
    extra = set(kw) - _NODE_KEYWORDS
    if args or extra:
        raise r._error(node, f"Node arguments {sorted(extra) or 'by position'}")
    on_exit = kw.get("on_exit")
    if on_exit is not None and not isinstance(on_exit, _Shutdown):
        raise r._error(node, "on_exit other than Shutdown()")
    cond = kw.get("condition")
    remaps = tuple((a, b) for a, b in kw.get("remappings", []))
    return NodeDeclaration(package=kw["package"], executable=kw["executable"], name=kw.get("name"),
                           namespace=kw.get("namespace", ""), parameters=tuple(kw.get("parameters", [])),
                           remappings=remaps, arguments=tuple(kw.get("arguments", [])),
                           conditions=(cond,) if cond is not None else (),
                           shutdown_on_exit=on_exit is not None, lineno=node.lineno)


_CALLS: dict[str, Callable[[_Reader, ast.Call, list[Any], dict[str, Any]], Any]] = {
    "ament_index_python.packages.get_package_share_directory": _c_share,
    "ament_index_python.get_package_share_directory": _c_share,
    "os.path.join": _c_join,
    "launch.substitutions.PathJoinSubstitution": _c_path_join,
    "launch.LaunchDescription": _c_description,
    "launch.actions.DeclareLaunchArgument": _c_declare,
    "launch.actions.GroupAction": _c_group,
    "launch.actions.Shutdown": _c_shutdown,
    "launch.substitutions.LaunchConfiguration": _c_config,
    "launch.conditions.IfCondition": _c_if,
    "launch.conditions.UnlessCondition": _c_unless,
    "launch_ros.actions.Node": _c_node,
    "launch_ros.parameter_descriptions.ParameterValue": _c_param_value,
}


def _children(value: Any) -> tuple[Any, ...]:
    """The values directly inside a symbolic value."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(value, dict):
        return (*value.keys(), *value.values())
    if isinstance(value, NodeDeclaration):
        return (value.package, value.executable, value.name, value.namespace, value.parameters,
                value.remappings, value.arguments, value.conditions)
    attr = _INNER.get(type(value))
    return (getattr(value, attr),) if attr else ()


_INNER = {_Join: "parts", _Condition: "expr", _ParamValue: "expr", _Share: "package",
          LaunchArgument: "default"}


def _walk(value: Any) -> Iterator[Any]:
    """Every symbolic value inside ``value`` (itself included)."""
    yield value
    for child in _children(value):
        yield from _walk(child)


@dataclass(frozen=True)
class LaunchFile:
    """What a launch file declares, read statically.

    Attributes:
        path: the launch file.
        arguments: declared launch arguments by name, in declaration order.
        nodes: node declarations in order; group conditions are folded into each node's ``conditions``.
        share_directory: the directory ``get_package_share_directory('ros2_tracker')`` stands for (the
            folder above ``launch/``: the source tree, or an installed ``share/ros2_tracker``).
    """

    path: Path
    arguments: dict[str, LaunchArgument]
    nodes: tuple[NodeDeclaration, ...]
    share_directory: Path

    @property
    def executables(self) -> list[tuple[str, str]]:
        """``(package, executable)`` of every node declared, whatever its condition."""
        return [(self._literal(n.package), self._literal(n.executable)) for n in self.nodes]

    def used_arguments(self) -> set[str]:
        """Names of every ``LaunchConfiguration`` the file reads."""
        found = set()
        for part in (*self.nodes, *self.arguments.values()):
            found |= {v.name for v in _walk(part) if isinstance(v, _Config)}
        return found

    def defaults(self) -> dict[str, str]:
        """Declared default values (arguments without a default are left out)."""
        declared = self.arguments.items()
        return {n: str(self._resolve(a.default, {})) for n, a in declared if a.default is not None}

    def check_arguments(self, values: Mapping[str, str]) -> dict[str, str]:
        """Defaults updated with ``values``.

        Raises:
            LaunchArgumentError: an unknown name (the message lists the valid ones), a missing required
                argument, or a value outside the declared choices.
        """
        unknown = sorted(set(values) - set(self.arguments))
        if unknown:
            raise LaunchArgumentError(f"unknown launch argument(s) {', '.join(unknown)} for "
                                      f"{self.path.name}; valid: {', '.join(self.arguments)}")
        merged = {**self.defaults(), **values}
        missing = [n for n in self.arguments if n not in merged]
        if missing:
            raise LaunchArgumentError(f"launch argument(s) {', '.join(missing)} must be given (name:=value)")
        for n, a in self.arguments.items():
            if a.choices is not None and merged[n] not in a.choices:
                raise LaunchArgumentError(f"launch argument {n}:={merged[n]!r} is not one of "
                                          f"{', '.join(a.choices)}")
        return merged

    def params_files(self, values: Mapping[str, str] | None = None) -> list[Path]:
        """Parameter files the nodes read (with the defaults unless ``values`` override them)."""
        args = self.check_arguments(values or {})
        found: list[Path] = []
        for n in self.nodes:
            for item in n.parameters:
                if not isinstance(item, dict):
                    p = Path(str(self._resolve(item, args)))
                    if p not in found:
                        found.append(p)
        return found

    def node_specs(self, values: Mapping[str, str] | None = None) -> list[NodeSpec]:
        """The nodes to start for these argument values (condition-false nodes left out), in file order.

        Raises:
            LaunchArgumentError: an unknown argument, a value outside its choices, or a condition that
                is not ``true``/``false``/``1``/``0``.
        """
        args = self.check_arguments(values or {})
        specs = []
        for n in self.nodes:
            if all(self._holds(c, args) for c in n.conditions):
                specs.append(self._spec(n, args))
        return specs

    # -- evaluation
    def _literal(self, value: Any) -> str:
        return str(self._resolve(value, self.defaults()))

    def _holds(self, cond: _Condition, args: Mapping[str, str]) -> bool:
        text = str(self._resolve(cond.expr, args)).strip().lower()
        if text not in ("true", "false", "1", "0"):
            raise LaunchArgumentError(f"condition value {text!r} is not true/false/1/0 ({self.path.name})")
        return (text in ("true", "1")) != cond.negate

    def _resolve(self, value: Any, args: Mapping[str, str]) -> Any:
        if isinstance(value, _Config):
            if value.name not in args:
                raise LaunchArgumentError(f"{self.path.name}: launch argument {value.name!r} is used but not "
                                          "declared")
            return args[value.name]
        if isinstance(value, _Join):
            return os.path.join(*(str(self._resolve(p, args)) for p in value.parts))
        if isinstance(value, _Share):
            return str(package_share_directory(str(self._resolve(value.package, args)), self.share_directory))
        if isinstance(value, _ParamValue):
            return _typed(self._resolve(value.expr, args), value.value_type)
        if isinstance(value, list):
            return [self._resolve(v, args) for v in value]
        if isinstance(value, tuple):
            return tuple(self._resolve(v, args) for v in value)
        if isinstance(value, dict):
            return {self._resolve(k, args): self._resolve(v, args) for k, v in value.items()}
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        raise LaunchFileError(f"{self.path.name}: cannot evaluate {value!r} here")

    def _param_value(self, value: Any, args: Mapping[str, str]) -> Any:
        resolved = self._resolve(value, args)
        if isinstance(value, (_Config, _Join)):
            # launch_ros reads a substituted string parameter as YAML (so 'false' is a bool, '1.5' a float)
            loaded = yaml.safe_load(resolved) if resolved != "" else ""
            return "" if loaded is None else loaded
        return resolved

    def _spec(self, n: NodeDeclaration, args: Mapping[str, str]) -> NodeSpec:
        package, executable = str(self._resolve(n.package, args)), str(self._resolve(n.executable, args))
        name = str(self._resolve(n.name, args)) if n.name is not None else executable
        ns = str(self._resolve(n.namespace, args) or "").strip()
        if ns and not ns.startswith("/"):
            ns = "/" + ns
        files: list[Path] = []
        params: dict[str, Any] = {}
        for item in n.parameters:
            if isinstance(item, dict):
                for k, v in item.items():
                    params[str(self._resolve(k, args))] = self._param_value(v, args)
            elif params:
                raise LaunchFileError(f"{self.path}:{n.lineno}: a parameter file after a parameter dict "
                                      "(files come first, so that -p overrides keep the same precedence)")
            else:
                files.append(Path(str(self._resolve(item, args))))
        remaps = tuple((str(self._resolve(a, args)), str(self._resolve(b, args))) for a, b in n.remappings)
        arguments = tuple(str(self._resolve(a, args)) for a in n.arguments)
        is_ours = package == PACKAGE
        return NodeSpec(name=name, module=executable if is_ours else "", params_files=tuple(files),
                        params=params, remaps=remaps, namespace=ns, arguments=arguments,
                        executable="" if is_ours else (find_executable(package, executable) or executable),
                        shutdown_on_exit=n.shutdown_on_exit)


def _typed(value: Any, value_type: type | None) -> Any:
    """launch_ros's ``ParameterValue`` conversion of a substituted string."""
    if value_type is None:
        return yaml.safe_load(value) if isinstance(value, str) and value else value
    if value_type is str:
        return str(value)
    if value_type is bool:
        text = str(value).strip().lower()
        if text not in ("true", "false", "1", "0"):
            raise LaunchArgumentError(f"{value!r} is not a bool (true/false)")
        return text in ("true", "1")
    try:
        return value_type(value)
    except ValueError:
        raise LaunchArgumentError(f"{value!r} is not a valid {value_type.__name__}") from None


def _flatten_actions(actions: Sequence[Any], conditions: tuple[_Condition, ...],
                     nodes: list[NodeDeclaration], declared: dict[str, LaunchArgument]) -> None:
    for a in actions:
        if isinstance(a, LaunchArgument):
            declared[a.name] = a
        elif isinstance(a, NodeDeclaration):
            nodes.append(replace(a, conditions=conditions + a.conditions))
        elif isinstance(a, _Group):
            inner = conditions + ((a.condition,) if a.condition is not None else ())
            _flatten_actions(a.actions, inner, nodes, declared)
        elif isinstance(a, (list, tuple)):
            _flatten_actions(a, conditions, nodes, declared)
        else:
            raise LaunchFileError(f"unsupported action in the launch description: {a!r}")


def parse_launch_file(path: str | Path) -> LaunchFile:
    """Read a launch file's arguments and nodes without importing it.

    Args:
        path: a ``*.launch.py`` file defining ``generate_launch_description()``.

    Raises:
        LaunchFileError: not found, not Python, no ``generate_launch_description``, or a construct
            outside the supported subset (the message names the line).
    """
    p = Path(path)
    if not p.is_file():
        raise LaunchFileError(f"{p}: launch file not found")
    try:
        tree = ast.parse(p.read_text(), filename=str(p))
    except SyntaxError as exc:
        raise LaunchFileError(f"{p}:{exc.lineno}: not valid Python: {exc.msg}") from None
    except (UnicodeDecodeError, ValueError) as exc:  # binary (an image, an archive) or NUL bytes
        raise LaunchFileError(f"{p}: not a launch file (not Python text: {exc})") from None
    reader = _Reader(tree, p)
    if "generate_launch_description" not in reader.functions:
        raise LaunchFileError(f"{p}: no generate_launch_description() function")
    fn = reader.functions["generate_launch_description"]
    description = reader.call_function("generate_launch_description", [], {}, fn)
    if not isinstance(description, list):
        raise LaunchFileError(f"{p}: generate_launch_description() must return LaunchDescription([...])")
    nodes: list[NodeDeclaration] = []
    declared: dict[str, LaunchArgument] = {}
    _flatten_actions(description, (), nodes, declared)
    share = p.resolve().parent.parent if p.resolve().parent.name == "launch" else p.resolve().parent
    info = LaunchFile(path=p, arguments=declared, nodes=tuple(nodes), share_directory=share)
    undeclared = sorted(info.used_arguments() - set(declared))
    if undeclared:
        raise LaunchFileError(f"{p}: launch argument(s) {', '.join(undeclared)} used but not declared")
    return info


def parse_launch_arguments(items: Sequence[str]) -> dict[str, str]:
    """``["name:=value", ...]`` -> ``{name: value}``; raises :class:`LaunchArgumentError` on other forms."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name.isidentifier():
            raise LaunchArgumentError(f"launch arguments are name:=value, got {item!r}")
        out[name] = value
    return out


def package_share_directory(package: str, own_share: Path | None = None) -> Path:
    """Share directory of ``package``: ``own_share`` for ros2_tracker, else the ament index.

    Raises:
        LaunchFileError: the package is not installed (no ament index, or not in it).
    """
    if package == PACKAGE and own_share is not None:
        return own_share
    if package == PACKAGE:
        source_tree = Path(__file__).resolve().parents[1]
        if (source_tree / "launch").is_dir() and (source_tree / "config").is_dir():
            return source_tree
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        raise LaunchFileError(f"cannot locate package {package!r}: ament_index_python is not "
                              "installed") from None
    try:
        return Path(get_package_share_directory(package))
    except (LookupError, ValueError, OSError):  # PackageNotFoundError is a KeyError
        raise LaunchFileError(f"package {package!r} is not installed (not in the ament index)") from None


def find_executable(package: str, executable: str) -> str | None:
    """``<prefix>/lib/<package>/<executable>`` of an ament prefix (``ros2 run`` style), else ``PATH``."""
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        cand = Path(prefix) / "lib" / package / executable
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return shutil.which(executable)


# --------------------------------------------------------------------------------------- supervision
def node_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for node processes: ``env`` (default: this one) with unbuffered Python output and,
    unless a Fast DDS profile is set already, :func:`fastdds_profile` (reliable repair within 50 ms).

    The rclpy wheels re-exec Python at start-up unless ``_ROS_WHEELS_BOOTSTRAP_COMPLETE`` is set, and a
    process that has the flag without the bootstrapped ``LD_LIBRARY_PATH`` cannot load rclpy: keep the
    flag only together with ``LD_LIBRARY_PATH``.
    """
    out = dict(os.environ if env is None else env)
    if "_ROS_WHEELS_BOOTSTRAP_COMPLETE" in out and not out.get("LD_LIBRARY_PATH"):
        del out["_ROS_WHEELS_BOOTSTRAP_COMPLETE"]
    out["PYTHONUNBUFFERED"] = "1"
    out.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    profile = fastdds_profile()
    if profile is not None and not any(out.get(v) for v in _FASTDDS_PROFILE_VARIABLES):
        out[_FASTDDS_PROFILE_VARIABLES[0]] = str(profile)
    return out


_FASTDDS_PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")

# Private graphs (a replay, a test, a benchmark) take domain IDs in 1..101: the ROS 2 documentation's safe
# range on Linux ("About Domain ID"): Fast DDS listens on UDP ports 7400 + 250 x domain + ..., and from
# domain 102 on those fall into Linux's ephemeral port range (32768-60999), where any outgoing socket of the
# machine may hold one. Domain 0, every ROS program's default, is left out.
PRIVATE_DOMAIN_IDS = range(1, 102)


def private_domain_id(key: int) -> int:
    """A ROS domain ID for a private graph, derived from ``key`` (a process id, plus an offset for each
    further graph the same process runs at once): in :data:`PRIVATE_DOMAIN_IDS`."""
    ids = PRIVATE_DOMAIN_IDS
    return ids.start + key % len(ids)


def fastdds_profile() -> Path | None:
    """``config/fastdds_profile.xml`` of this package (writers' heartbeat every 50 ms, so a reliable sample
    a reader missed is repaired before a fast replay overwrites it; see the file), or None when not found."""
    try:
        path = package_share_directory(PACKAGE) / "config" / "fastdds_profile.xml"
    except LaunchFileError:
        return None
    return path if path.is_file() else None


def hangup_ignored(sig: int) -> bool:
    """True for SIGHUP when this process ignores it (``nohup``): handlers must then leave it ignored."""
    return sig == signal.SIGHUP and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def _ignore_signal(signum: int, frame: Any) -> None:
    """A handler that does nothing (unlike SIG_IGN, exec resets it to the default in a child)."""


@contextlib.contextmanager
def _sigint_not_ignored_by_children() -> Iterator[None]:
    """Nodes must stop on the SIGINT the supervisor sends them, even when this process was started with
    SIGINT ignored, as a background job of a non-interactive shell is (``ros2-tracker launch ... &`` in a
    script). An ignored signal stays ignored across exec, a handled one goes back to the default, so while a
    node starts, an ignored SIGINT is handled by a handler that ignores it (this process still ignores it).
    Only the main thread may change handlers; elsewhere nodes inherit what this process has."""
    if (signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    signal.signal(signal.SIGINT, _ignore_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class _Child:
    spec: NodeSpec
    proc: subprocess.Popen
    reader: threading.Thread
    signals_sent: list[str] = field(default_factory=list)


class Supervisor:
    """The processes of a running graph (see :func:`launch_graph`).

    Use as a context manager (leaving it shuts everything down), or call :meth:`shutdown` yourself.
    All methods are meant for the thread that created the supervisor; signal handlers only set flags.
    Nodes started from the main thread stop (SIGTERM) when this process dies, however it dies.
    """

    def __init__(self, sink: TextIO | Callable[[str], None] | None = None,
                 env: Mapping[str, str] | None = None, *, python: str | None = None,
                 cwd: str | Path | None = None) -> None:
        self._env = node_environment(env)
        self._python, self._cwd = python, cwd
        self._children: dict[str, _Child] = {}
        self._lock = threading.Lock()
        self._sink = sink if sink is not None else sys.stdout
        self._stop_signal: int | None = None
        self._stop_started: float | None = None
        self._escalation = 0

    # -- starting
    def start(self, spec: NodeSpec) -> None:
        """Start one more node process, in its own session: terminal signals reach only us (we forward)."""
        if spec.name in self._children:
            raise ValueError(f"two nodes named {spec.name!r}")
        python = self._python
        from ros2_tracker.nodes.spinning import SUPERVISOR_PID_ENV

        env = dict(self._env)
        if threading.current_thread() is threading.main_thread():
            # they stop when we die (run_node). The kernel's notice is for the death of the *thread* that
            # started them: from another thread, nodes would be stopped when that thread ends.
            env[SUPERVISOR_PID_ENV] = str(os.getpid())
        with _sigint_not_ignored_by_children():
            proc = subprocess.Popen(spec.command(python), env=env, cwd=self._cwd,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        reader = threading.Thread(target=self._pump, args=(spec.name, proc), daemon=True,
                                  name=f"output-{spec.name}")
        reader.start()
        self._children[spec.name] = _Child(spec, proc, reader)
        self.log(f"started {spec.name} (pid {proc.pid}): {' '.join(spec.command(python))}")

    def _pump(self, name: str, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            self._emit(f"[{name}] {raw.decode(errors='replace').rstrip()}")
        proc.stdout.close()

    def _emit(self, line: str) -> None:
        with self._lock:
            if callable(self._sink):
                self._sink(line)
            else:
                self._sink.write(line + "\n")
                self._sink.flush()

    def log(self, message: str) -> None:
        """Write a supervisor line (``[launch] ...``) to the sink."""
        self._emit(f"[launch] {message}")

    # -- state
    @property
    def names(self) -> list[str]:
        """Node names in start order."""
        return list(self._children)

    def pid(self, name: str) -> int:
        """Process id of a node."""
        return self._children[name].proc.pid

    def returncode(self, name: str) -> int | None:
        """Exit code of a node (negative: killed by that signal), None while it runs."""
        return self._children[name].proc.poll()

    def running(self) -> list[str]:
        """Names of the nodes still running."""
        return [n for n, c in self._children.items() if c.proc.poll() is None]

    def exit_codes(self) -> dict[str, int | None]:
        """Exit code of every node (None: still running)."""
        return {n: c.proc.poll() for n, c in self._children.items()}

    def signals_sent(self, name: str) -> list[str]:
        """Signals the supervisor sent to a node, in order (e.g. ``['SIGINT', 'SIGTERM']``)."""
        return list(self._children[name].signals_sent)

    # -- stopping
    def send_signal(self, sig: int, names: Sequence[str] | None = None) -> None:
        """Send ``sig`` to the given (default: all) running nodes."""
        for n in names if names is not None else self.names:
            c = self._children[n]
            if c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.send_signal(sig)
                c.signals_sent.append(signal.Signals(sig).name)

    def wait(self, timeout: float | None = None, names: Sequence[str] | None = None) -> bool:
        """Wait until the given (default: all) nodes exited; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for n in names if names is not None else self.names:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self._children[n].proc.wait(left)
            except subprocess.TimeoutExpired:
                return False
        return True

    def shutdown(self, names: Sequence[str] | None = None, *, sigint_timeout: float = 5.0,
                 sigterm_timeout: float = 3.0) -> dict[str, int | None]:
        """Stop nodes: SIGINT, then SIGTERM after ``sigint_timeout``, then SIGKILL after ``sigterm_timeout``.

        Returns:
            Exit code of every node of the graph.
        """
        targets = [n for n in (names if names is not None else self.names) if self.returncode(n) is None]
        for sig, timeout in ((signal.SIGINT, sigint_timeout), (signal.SIGTERM, sigterm_timeout),
                             (signal.SIGKILL, 5.0)):
            targets = [n for n in targets if self.returncode(n) is None]
            if not targets:
                break
            if sig == signal.SIGKILL:
                self.dump_stacks(targets)
            if sig != signal.SIGINT:
                self.log(f"{', '.join(targets)} still running; sending {signal.Signals(sig).name}")
            self.send_signal(sig, targets)
            self.wait(timeout, targets)
        for n in names if names is not None else self.names:
            self._children[n].reader.join(timeout=2.0)
        return self.exit_codes()

    def dump_stacks(self, names: Sequence[str], wait_s: float = 1.0) -> None:
        """Ask the given running nodes of this package (not external executables, which SIGUSR1 would
        kill) for their Python threads' stacks (SIGUSR1: :func:`ros2_tracker.nodes.spinning.run_node`
        registers :mod:`faulthandler` for it) into their output, the log, before they are killed: where
        a node that ignored SIGINT and SIGTERM hangs."""
        ours = [n for n in names if self._children[n].spec.module and self.returncode(n) is None]
        if not ours:
            return
        self.log(f"{', '.join(ours)} did not stop: their Python stacks follow (SIGUSR1)")
        for n in ours:
            with contextlib.suppress(ProcessLookupError):
                self._children[n].proc.send_signal(signal.SIGUSR1)
        self.wait(wait_s, ours)

    def request_stop(self, sig: int) -> None:
        """Signal-handler entry: forward ``sig`` to every node; :meth:`supervise` escalates on timeouts.

        A second request escalates at once (SIGTERM, then SIGKILL).
        """
        if self._stop_signal is None:
            self._stop_signal = sig
            self._stop_started = time.monotonic()
            # a hangup (the terminal closed) is a stop like Ctrl-C: nodes would die of SIGHUP at once,
            # the recorder's bag left without its summary
            self.send_signal(signal.SIGINT if sig == signal.SIGHUP else sig)
        else:
            self._escalation += 1
            self.send_signal(signal.SIGTERM if self._escalation == 1 else signal.SIGKILL)

    def start_all(self, specs: Sequence[NodeSpec]) -> None:
        """Start every spec, in order, until a stop is requested (a signal while starting, when called
        inside :meth:`forwarding_signals`: the nodes already started are then stopped by the caller's
        shutdown, none is left behind).

        Raises:
            OSError: a process could not be started (the ones already started are stopped first).
        """
        try:
            for spec in specs:
                if self.stop_requested:
                    break
                self.start(spec)
        except BaseException:
            self.shutdown()
            raise

    @contextlib.contextmanager
    def forwarding_signals(self, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)):
        """Within the block, SIGINT/SIGTERM/SIGHUP to this process are forwarded to the nodes.

        A hangup this process ignores (started by ``nohup``) stays ignored, here and in the nodes started
        in the block (which inherit it): closing the terminal must not stop a ``nohup`` launch."""
        signals = [s for s in signals if not hangup_ignored(s)]
        previous = {s: signal.signal(s, lambda sig, frame: self.request_stop(sig)) for s in signals}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @property
    def stop_requested(self) -> bool:
        """True once a stop was requested (signal or a ``shutdown_on_exit`` node ending)."""
        return self._stop_signal is not None

    def supervise(self, *, poll_s: float = 0.1, sigint_timeout: float = 5.0, sigterm_timeout: float = 3.0,
                  until: Callable[[], bool] | None = None) -> dict[str, int | None]:
        """Run until every node exited (or ``until()`` is true), handling stops and escalation.

        A node with ``shutdown_on_exit`` that ends stops the others (SIGINT). After a stop request,
        nodes still running after ``sigint_timeout`` get SIGTERM, and after ``sigterm_timeout`` more,
        SIGKILL.
        """
        while self.running():
            if until is not None and until():
                break
            for n, c in self._children.items():
                if c.spec.shutdown_on_exit and c.proc.poll() is not None and not self.stop_requested:
                    self.log(f"{n} exited ({c.proc.returncode}); shutting down")
                    self.request_stop(signal.SIGINT)
            if self._stop_started is not None:
                waited = time.monotonic() - self._stop_started
                if waited > sigint_timeout and self._escalation == 0:
                    self._escalation = 1
                    self.log(f"{', '.join(self.running())} still running; sending SIGTERM")
                    self.send_signal(signal.SIGTERM)
                elif waited > sigint_timeout + sigterm_timeout and self._escalation == 1:
                    self._escalation = 2
                    self.dump_stacks(self.running())
                    self.log(f"{', '.join(self.running())} still running; sending SIGKILL")
                    self.send_signal(signal.SIGKILL)
            time.sleep(poll_s)
        for c in self._children.values():
            if c.proc.poll() is not None:
                c.reader.join(timeout=2.0)
        return self.exit_codes()

    def report(self) -> str:
        """One line per node: its exit code and the signals it was sent."""
        lines = []
        for n, c in self._children.items():
            rc = c.proc.poll()
            if rc is None:
                state = "running"
            elif rc < 0:
                state = f"killed by {signal.Signals(-rc).name}"
            else:
                state = f"exit code {rc}"
            sent = f" (sent {', '.join(c.signals_sent)})" if c.signals_sent else ""
            lines.append(f"{n}: {state}{sent}")
        return "\n".join(lines)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def launch_graph(specs: Sequence[NodeSpec], env: Mapping[str, str] | None = None, *,
                 sink: TextIO | Callable[[str], None] | None = None, python: str | None = None,
                 cwd: str | Path | None = None) -> Supervisor:
    """Start every spec as its own process and return their :class:`Supervisor`.

    Args:
        specs: the nodes, started in this order.
        env: base environment (default: this process's), passed through :func:`node_environment`;
            set ``ROS_DOMAIN_ID`` / ``ROS_LOG_DIR`` here.
        sink: where ``[name] line`` output goes: a text stream (default stdout) or a callable.
        python: interpreter for node modules (default: this one).
        cwd: working directory of the processes.

    Raises:
        OSError: a process could not be started (the ones already started are stopped first).
    """
    sup = Supervisor(sink, env, python=python, cwd=cwd)
    sup.start_all(specs)
    return sup
