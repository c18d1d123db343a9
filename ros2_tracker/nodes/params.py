"""ROS 2 parameters declared from validated config dataclasses (one source of truth).

:func:`declare_config` declares one parameter per field of a :class:`~ros2_tracker.core.config.ConfigBase`
dataclass, with a ``ParameterDescriptor`` built from the field's metadata (description and unit,
``floating_point_range`` / ``integer_range`` from ``low``/``high``, ``read_only``, the choices as
``additional_constraints``), reads the values (defaults overridden by ``--params-file`` / ``-p``) and
validates them through the dataclass. Any problem -- a value out of range, a wrong type, a bad
choice, a cross-field conflict -- raises :class:`~ros2_tracker.core.config.ConfigError` naming the
parameter and its valid range, so a node can log it and exit non-zero at start-up.

:func:`add_on_set_validator` validates run-time changes (``ros2 param set``, the
``rcl_interfaces/srv/SetParameters`` service) through the same dataclass: an invalid change is
rejected with the reason, an accepted one is handed to the node as a new config instance after the
parameters are stored.

Type mapping: bool -> BOOL, int -> INTEGER, float -> DOUBLE, str -> STRING, list -> an array type
(``list[float]`` -> DOUBLE_ARRAY ...; a bare ``list`` takes its default's element type, DOUBLE_ARRAY
when empty). At start-up types are strict, as in ROS: a float parameter given ``1`` instead of ``1.0``
is rejected with a message saying so. At run time (:func:`declare_config` adds a pre-set callback) an
integer sent to a float parameter is taken as that float, integers to a float list likewise, and an
empty list of any type as the parameter's empty list: ``ros2 param set /tracker max_lost_s 2`` sends an
INTEGER, and ``... ground_homography []`` an empty BOOL_ARRAY, which rclpy alone refuses with "Wrong
parameter type, expected '3' got '2'". Any other type is refused in words ("max_lost_s: expected a
floating-point number, got a string ('abc')"), where rclpy's own refusal prints its type enum's numbers.

rclpy is imported inside the functions (no import-time side effects).
"""

from __future__ import annotations

import array
import sys
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from ros2_tracker.core.config import ConfigBase, ConfigError, FieldSpec

__all__ = ["add_on_set_validator", "declare_config", "parameter_descriptor", "plain_value"]

C = TypeVar("C", bound=ConfigBase)

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX = sys.float_info.max  # open bounds; inf is avoided because some tools cannot show it


def parameter_descriptor(spec: FieldSpec, name: str | None = None, element_type: type | None = None) -> Any:
    """The ``rcl_interfaces/ParameterDescriptor`` of one config field.

    Args:
        spec: the field.
        name: the full parameter name (prefix included); ``spec.name`` when None.
        element_type: element type of a list field (default float).
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    text = spec.description + (f" [{spec.unit}]" if spec.unit else "")
    if spec.low is not None or spec.high is not None or spec.choices:
        text += f"; valid: {spec.range_text()}"
    d = ParameterDescriptor(name=name or spec.name, type=_ros_type(spec, element_type).value,
                            description=text, read_only=bool(spec.read_only))
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.low is not None or spec.high is not None:
        if spec.type is float:
            d.floating_point_range = [FloatingPointRange(
                from_value=float(spec.low) if spec.low is not None else -_FLOAT_MAX,
                to_value=float(spec.high) if spec.high is not None else _FLOAT_MAX, step=0.0)]
        elif spec.type is int:
            d.integer_range = [IntegerRange(
                from_value=int(spec.low) if spec.low is not None else _INT_MIN,
                to_value=int(spec.high) if spec.high is not None else _INT_MAX, step=0)]
    return d


def declare_config(node: Any, cls: type[C], prefix: str = "") -> C:
    """Declare one parameter per field of ``cls`` on ``node`` and return the validated config.

    Args:
        node: an ``rclpy.node.Node``.
        cls: the config dataclass.
        prefix: prepended to every field name (e.g. ``"tracker."``); empty for the plain names.

    Returns:
        ``cls`` built from the parameters' values (defaults, then params file / ``-p`` overrides).

    Raises:
        ConfigError: a value is out of range, of the wrong type, not one of the choices, or breaks a
            cross-field rule; the message names the parameter and its valid range.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.parameter import Parameter

    _coerce_run_time_types(node)
    element_types = _element_types(cls)
    values: dict[str, Any] = {}
    for spec in cls.specs():
        name = prefix + spec.name
        elem = element_types.get(spec.name)
        descriptor = parameter_descriptor(spec, name, elem)
        ros_type = Parameter.Type(descriptor.type)
        empty_list = spec.type is list and not spec.default
        try:
            if empty_list:  # rclpy cannot infer an array type from [], so declare the type alone
                param = node.declare_parameter(name, ros_type, descriptor)
            else:
                param = node.declare_parameter(name, spec.default, descriptor)
            if spec.type is list and param.type_ == Parameter.Type.NOT_SET:
                # [] as the default or as an override (-p classes:=[], a params file): an untyped empty
                # array, which rclpy leaves unset; it is the declared type's empty list
                node.set_parameters([Parameter(name, ros_type, [])])
                param = node.get_parameter(name)
        except InvalidParameterTypeException as exc:
            raise ConfigError(f"{name}: expected {_type_text(spec, elem)} in {spec.range_text()} "
                              f"({_rclpy_reason(exc, name)})") from None
        except InvalidParameterValueException as exc:
            raise ConfigError(f"{name}: {_rclpy_reason(exc, name)}; valid: {spec.range_text()} "
                              f"({spec.description})") from None
        values[spec.name] = plain_value(param.value)
    return _build(cls, values, prefix)


def add_on_set_validator(node: Any, cls: type[C], getter: Callable[[], C], setter: Callable[[C], None],
                         prefix: str = "", check: Callable[[C], None] | None = None) -> None:
    """Validate run-time changes of ``cls``'s parameters and swap in the new config when accepted.

    Args:
        node: the ``rclpy.node.Node`` that declared the parameters (:func:`declare_config`).
        cls: the config dataclass.
        getter: returns the config in use (the base that the changes apply to).
        setter: receives the new, validated config after rclpy stored the parameters (a
            post-set callback, so a change rejected by another validator is never applied).
        prefix: the prefix given to :func:`declare_config`.
        check: a further check of the new config against what the node has built (e.g. a loaded model);
            a ``ConfigError`` it raises rejects the change with its message.
    """
    from rcl_interfaces.msg import SetParametersResult

    names = {prefix + s.name: s.name for s in cls.specs()}

    def changes(params: list[Any]) -> dict[str, Any]:
        return {names[p.name]: plain_value(p.value) for p in params if p.name in names}

    def on_set(params: list[Any]) -> Any:
        delta = changes(params)
        if delta:
            try:
                new = getter().replace(**delta)
                if check is not None:
                    check(new)
            except ConfigError as exc:
                return SetParametersResult(successful=False, reason=prefix + str(exc))
            except (TypeError, ValueError, ArithmeticError) as exc:  # a check that overflowed refuses too
                return SetParametersResult(successful=False, reason=f"{cls.__name__}: {exc}")
        return SetParametersResult(successful=True)

    def post_set(params: list[Any]) -> None:
        delta = changes(params)
        if delta:
            setter(getter().replace(**delta))

    node.add_on_set_parameters_callback(on_set)
    node.add_post_set_parameters_callback(post_set)


# ------------------------------------------------------------------------------------ helpers
_COERCING = "_ros2_tracker_coerces_parameter_types"  # marks a node that has the pre-set callback


def _coerce_run_time_types(node: Any) -> None:
    """Add (once per node) a pre-set callback giving run-time changes their parameter's declared type where
    the value is unambiguous: an integer for a float, integers for a float list, an empty list of any
    type for any list. A value of any other type is refused with a reason in words: the pre-set callback
    puts the parameter's current value in its place (so that rclpy's own type check, whose message reads
    "expected '3' got '4'", passes) and remembers why, and an on-set callback added with it refuses the
    change with that reason (a read-only parameter is still refused as read-only, by rclpy, first)."""
    from rcl_interfaces.msg import SetParametersResult

    if getattr(node, _COERCING, False):
        return
    setattr(node, _COERCING, True)
    wrong: dict[str, str] = {}  # the values of this set of the wrong type: parameter name -> reason

    def pre_set(params: list[Any]) -> list[Any]:
        wrong.clear()
        return [_as_declared_type(node, p, wrong) for p in params]

    def refuse_wrong_types(params: list[Any]) -> Any:
        reasons = [wrong[p.name] for p in params if p.name in wrong]
        wrong.clear()
        return SetParametersResult(successful=not reasons, reason="; ".join(reasons))

    node.add_pre_set_parameters_callback(pre_set)
    node.add_on_set_parameters_callback(refuse_wrong_types)


def _as_declared_type(node: Any, p: Any, wrong: dict[str, str]) -> Any:
    """``p`` as the declared type of its parameter where the value is unambiguous (see
    :func:`_coerce_run_time_types`); otherwise, for a value of another type, the parameter's current value,
    with the reason to refuse the change put in ``wrong``."""
    from rclpy.parameter import Parameter

    t = Parameter.Type
    if p.type_ == t.NOT_SET or not node.has_parameter(p.name):
        return p
    want = t(node.describe_parameter(p.name).type)
    arrays = (t.BOOL_ARRAY, t.INTEGER_ARRAY, t.DOUBLE_ARRAY, t.STRING_ARRAY, t.BYTE_ARRAY)
    if p.type_ == want:
        return p
    if p.type_ == t.INTEGER and want == t.DOUBLE:
        return Parameter(p.name, want, float(p.value))
    if p.type_ == t.INTEGER_ARRAY and want == t.DOUBLE_ARRAY:
        return Parameter(p.name, want, [float(v) for v in p.value])
    if p.type_ in arrays and want in arrays and len(p.value) == 0:
        return Parameter(p.name, want, [])
    current = node.get_parameter(p.name)
    if current.type_ != want:  # (not expected: declare_config gives every parameter a typed value)
        return p
    given = repr(plain_value(p.value))
    given = given if len(given) <= _GIVEN_MAX else given[:_GIVEN_MAX - 3] + "..."
    wrong[p.name] = f"{p.name}: expected {_type_words(want)}, got {_type_words(p.type_)} ({given})"
    return current


_GIVEN_MAX = 60  # characters of a refused value quoted in the reason


def _type_words(ros_type: Any) -> str:
    """A ROS parameter type in words (rclpy's messages print the type enum's number)."""
    scalars = {"BOOL": "a boolean", "INTEGER": "an integer", "DOUBLE": "a floating-point number",
               "STRING": "a string", "BYTE_ARRAY": "a byte array"}
    lists = {"BOOL_ARRAY": "booleans", "INTEGER_ARRAY": "integers", "DOUBLE_ARRAY": "floating-point numbers",
             "STRING_ARRAY": "strings"}
    name = ros_type.name
    return scalars.get(name) or (f"a list of {lists[name]}" if name in lists else name.lower())


def _element_types(cls: type) -> dict[str, type]:
    """Element types of ``list[X]`` fields (bare ``list`` fields are absent)."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = typing.get_args(hint)
        if typing.get_origin(hint) is list and len(args) == 1 and isinstance(args[0], type):
            out[name] = args[0]
    return out


def _ros_type(spec: FieldSpec, element_type: type | None) -> Any:
    from rclpy.parameter import Parameter

    scalar = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER, float: Parameter.Type.DOUBLE,
              str: Parameter.Type.STRING}
    if spec.type in scalar:
        return scalar[spec.type]
    if spec.type is list:
        if element_type is None and spec.default:
            return Parameter.Type.from_parameter_value(list(spec.default))
        arrays = {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                  float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY}
        return arrays.get(element_type or float, Parameter.Type.DOUBLE_ARRAY)
    raise TypeError(f"{spec.name}: no ROS parameter type for {spec.type.__name__}")


def _type_text(spec: FieldSpec, element_type: type | None) -> str:
    if spec.type is float:
        return "a floating-point number (write 1.0, not 1)"
    if spec.type is list:
        return f"a list of {(element_type or float).__name__}"
    return {bool: "true/false", int: "an integer", str: "a string"}.get(spec.type, spec.type.__name__)


def _rclpy_reason(exc: Exception, name: str) -> str:
    """rclpy's reason without its boilerplate."""
    text = str(exc.args[0]) if exc.args else str(exc)
    text = text.split("Reason: ", 1)[-1].strip()
    return text[: -len(": " + name)] if text.endswith(": " + name) else text


def plain_value(value: Any) -> Any:
    """rclpy parameter value -> plain Python (arrays become lists)."""
    if isinstance(value, (array.array, tuple)):
        return list(value)
    return value


def _build(cls: type[C], values: dict[str, Any], prefix: str) -> C:
    try:
        return cls.from_dict(values)
    except ConfigError as exc:
        raise ConfigError(prefix + str(exc)) from None
