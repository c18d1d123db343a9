"""ROS parameters declared from config dataclasses: descriptors, overrides, start-up and run-time validation.

Uses real rclpy nodes in a private context (own ROS_DOMAIN_ID); nothing needs to spin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from ros2_tracker.core import ConfigError, TrackerConfig
from ros2_tracker.core.config import ConfigBase, param
from ros2_tracker.launching import private_domain_id
from ros2_tracker.nodes.node_config import TrackerNodeConfig

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

from rcl_interfaces.msg import ParameterType  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from ros2_tracker.nodes.params import (  # noqa: E402
    add_on_set_validator,
    declare_config,
    parameter_descriptor,
    plain_value,
)


@dataclass(frozen=True)
class DemoConfig(ConfigBase):
    """A config with every supported field type."""

    rate_hz: float = param(10.0, "Rate", low=0.5, high=100.0, unit="Hz")
    count: int = param(3, "Count", low=1)
    mode: str = param("fast", "Mode", choices=("fast", "exact"))
    enabled: bool = param(True, "Switch", read_only=True)
    names: list[str] = param(["a", "b"], "Names")
    weights: list = param([], "Weights (empty: none)")

    def check(self) -> None:
        if self.mode == "exact" and self.count > 10:
            raise ConfigError("count: must be <= 10 in exact mode")


@pytest.fixture
def context(tmp_path, monkeypatch):
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "ros_log"))
    ctx = Context()
    rclpy.init(context=ctx, domain_id=private_domain_id(os.getpid()))
    yield ctx
    ctx.try_shutdown()


def make_node(context, *args: str, name: str = "params_test") -> Node:
    return Node(name, context=context, cli_args=["--ros-args", *args] if args else None)


def test_descriptors_carry_description_unit_range_read_only_and_choices():
    specs = {s.name: s for s in DemoConfig.specs()}
    d = parameter_descriptor(specs["rate_hz"])
    assert d.type == ParameterType.PARAMETER_DOUBLE
    assert "Rate [Hz]" in d.description and "[0.5, 100]" in d.description
    assert (d.floating_point_range[0].from_value, d.floating_point_range[0].to_value) == (0.5, 100.0)
    d = parameter_descriptor(specs["count"])
    assert d.type == ParameterType.PARAMETER_INTEGER
    assert d.integer_range[0].from_value == 1 and d.integer_range[0].to_value == 2**63 - 1
    d = parameter_descriptor(specs["mode"])
    assert d.additional_constraints == "one of: fast, exact" and not d.floating_point_range
    assert parameter_descriptor(specs["enabled"]).read_only
    assert parameter_descriptor(specs["names"]).type == ParameterType.PARAMETER_STRING_ARRAY
    assert parameter_descriptor(specs["weights"]).type == ParameterType.PARAMETER_DOUBLE_ARRAY


def test_declares_every_field_with_defaults(context):
    node = make_node(context)
    assert declare_config(node, TrackerConfig) == TrackerConfig()
    assert declare_config(node, TrackerNodeConfig) == TrackerNodeConfig()
    names = {s.name for s in TrackerConfig.specs() + TrackerNodeConfig.specs()}
    assert all(node.has_parameter(n) for n in names)  # every field is a parameter
    d = node.describe_parameter("max_lost_s")
    assert "[s]" in d.description and d.floating_point_range[0].to_value == 3600.0
    assert node.describe_parameter("image_qos").read_only


def test_overrides_from_params_file_and_command_line(context, tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    rate_hz: 20.0\n    mode: exact\n    weights: [0.5, 2.0]\n")
    node = make_node(context, "--params-file", str(f), "-p", "count:=7", "-p", "names:=[x]")
    cfg = declare_config(node, DemoConfig, prefix="")
    assert cfg == DemoConfig(rate_hz=20.0, count=7, mode="exact", names=["x"], weights=[0.5, 2.0])
    assert isinstance(cfg.weights, list)


def test_an_empty_list_overrides_a_non_empty_default(context, tmp_path):
    """``[]`` from a params file or ``-p`` is an untyped array that rclpy leaves unset; the detector's
    ``classes: []`` (all classes) refused to start because of it."""
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    names: []\n")
    for args in (("--params-file", str(f)), ("-p", "names:=[]")):
        node = make_node(context, *args, name=f"empty_list_{len(args[1])}")
        cfg = declare_config(node, DemoConfig)
        assert cfg.names == [] and node.get_parameter("names").type_ == Parameter.Type.STRING_ARRAY
        node.destroy_node()


def test_a_further_check_rejects_a_change_with_its_reason(context):
    """``check`` weighs a change against what the node built (e.g. a learned motion model's horizon)."""
    node = make_node(context, name="check_test")
    cfg = {"now": declare_config(node, DemoConfig)}

    def check(new: DemoConfig) -> None:
        if new.count > 5:
            raise ConfigError("count: the loaded model takes at most 5")

    add_on_set_validator(node, DemoConfig, lambda: cfg["now"], lambda new: cfg.update(now=new), check=check)
    result = node.set_parameters([Parameter("count", value=6)])[0]
    assert not result.successful and result.reason == "count: the loaded model takes at most 5"
    assert node.set_parameters([Parameter("count", value=4)])[0].successful and cfg["now"].count == 4


def test_a_check_that_overflows_refuses_the_change_instead_of_killing_the_node(context):
    """An arithmetic error inside validation (ground_homography's determinant of entries of 1e200 once
    raised OverflowError out of rclpy's parameter service: tracker_node exited) is a refused change."""
    node = make_node(context, name="overflow_test")
    cfg = {"now": declare_config(node, DemoConfig)}

    def check(new: DemoConfig) -> None:
        if new.count > 5:
            raise OverflowError(34, "Numerical result out of range")

    add_on_set_validator(node, DemoConfig, lambda: cfg["now"], lambda new: cfg.update(now=new), check=check)
    result = node.set_parameters([Parameter("count", value=6)])[0]
    assert not result.successful and "out of range" in result.reason
    assert cfg["now"].count != 6 and node.set_parameters([Parameter("count", value=4)])[0].successful


def test_camera_motion_parameters_are_read_only(context):
    """The ECC aligner is made at start-up: a change at run time would be stored and never applied."""
    from ros2_tracker.cmc.ecc import CmcConfig

    node = make_node(context, name="cmc_test")
    declare_config(node, CmcConfig)
    for spec in CmcConfig.specs():
        assert node.describe_parameter(spec.name).read_only, spec.name
    assert not node.set_parameters([Parameter("cmc_motion", value="affine")])[0].successful


def test_prefix_is_prepended(context):
    node = make_node(context, "-p", "demo.count:=5")
    cfg = declare_config(node, DemoConfig, prefix="demo.")
    assert cfg.count == 5 and node.has_parameter("demo.rate_hz") and not node.has_parameter("rate_hz")


@pytest.mark.parametrize("override,expected", [
    ("rate_hz:=500.0", r"rate_hz: .*500.*valid: \[0.5, 100\]"),     # range, checked by rclpy
    ("count:=0", r"count: .*valid: \[1, inf\]"),
    ("rate_hz:=20", r"rate_hz: expected a floating-point number .*\[0.5, 100\]"),  # int for a float
    ("mode:=slow", r"mode: 'slow' is not one of fast, exact"),       # choices, checked by the dataclass
    ("count:=abc", r"count: expected an integer"),
])
def test_invalid_start_up_values_raise_config_error_naming_field_and_range(context, override, expected):
    node = make_node(context, "-p", override)
    with pytest.raises(ConfigError, match=expected):
        declare_config(node, DemoConfig)


def test_cross_field_rules_are_checked_at_start_up(context):
    node = make_node(context, "-p", "low_score:=0.9")
    with pytest.raises(ConfigError, match=r"low_score.*high_score"):
        declare_config(node, TrackerConfig)


def test_run_time_changes_are_validated_through_the_dataclass(context):
    node = make_node(context)
    state = {"cfg": declare_config(node, DemoConfig)}
    applied = []

    def setter(cfg):
        state["cfg"] = cfg
        applied.append(cfg)

    add_on_set_validator(node, DemoConfig, lambda: state["cfg"], setter)
    # out of range: rejected by the descriptor
    (r,) = node.set_parameters([Parameter("rate_hz", value=0.1)])
    assert not r.successful and "rate_hz" in r.reason
    # not a choice / breaks a cross-field rule: rejected by the dataclass, with its reason
    (r,) = node.set_parameters([Parameter("mode", value="slow")])
    assert not r.successful and "one of fast, exact" in r.reason
    node.set_parameters([Parameter("count", value=20)])
    (r,) = node.set_parameters([Parameter("mode", value="exact")])
    assert not r.successful and "exact mode" in r.reason
    # read-only
    (r,) = node.set_parameters([Parameter("enabled", value=False)])
    assert not r.successful and "read-only" in r.reason
    assert node.get_parameter("mode").value == "fast" and state["cfg"].mode == "fast"
    # valid changes swap in a new config (an atomic set is validated as a whole)
    r = node.set_parameters_atomically([Parameter("count", value=4), Parameter("mode", value="exact")])
    assert r.successful
    assert state["cfg"] == DemoConfig(count=4, mode="exact") and applied[-1] is state["cfg"]
    (r,) = node.set_parameters([Parameter("weights", value=[1.0, 2.0])])
    assert r.successful and state["cfg"].weights == [1.0, 2.0]


def test_run_time_values_take_the_declared_type_where_unambiguous(context):
    """What `ros2 param set` sends: `max_lost_s 2` an INTEGER, `ground_homography []` an empty BOOL_ARRAY;
    rclpy alone refused both ("Wrong parameter type, expected '3' got '2'"). A float or a list stays
    refused where an integer or a string is declared, with the types in words."""
    node = make_node(context)
    state = {"cfg": declare_config(node, DemoConfig)}
    add_on_set_validator(node, DemoConfig, lambda: state["cfg"], lambda c: state.update(cfg=c))
    declare_config(node, TrackerConfig, prefix="t.")  # a second config on the node: one callback still
    (r,) = node.set_parameters([Parameter("rate_hz", value=20)])
    assert r.successful and state["cfg"].rate_hz == 20.0 and node.get_parameter("rate_hz").value == 20.0
    assert node.get_parameter("rate_hz").type_ == Parameter.Type.DOUBLE
    (r,) = node.set_parameters([Parameter("rate_hz", value=500)])  # the range still holds
    assert not r.successful and state["cfg"].rate_hz == 20.0
    (r,) = node.set_parameters([Parameter("weights", value=[1, 2])])
    assert r.successful and state["cfg"].weights == [1.0, 2.0]
    (r,) = node.set_parameters([Parameter("weights", Parameter.Type.BOOL_ARRAY, [])])
    assert r.successful and state["cfg"].weights == []
    (r,) = node.set_parameters([Parameter("names", Parameter.Type.BOOL_ARRAY, [])])
    assert r.successful and state["cfg"].names == []
    (r,) = node.set_parameters([Parameter("t.ground_homography", Parameter.Type.INTEGER_ARRAY, [1] * 9)])
    assert r.successful and list(node.get_parameter("t.ground_homography").value) == [1.0] * 9
    before = state["cfg"]
    values = {n: plain_value(node.get_parameter(n).value) for n in ("count", "mode", "names", "rate_hz",
                                                                    "t.max_lost_s")}
    for name, value, reason in (
            ("count", 2.0, "count: expected an integer, got a floating-point number (2.0)"),
            ("mode", 3, "mode: expected a string, got an integer (3)"),
            ("names", [1, 2], "names: expected a list of strings, got a list of integers ([1, 2])"),
            ("rate_hz", True, "rate_hz: expected a floating-point number, got a boolean (True)"),
            ("t.max_lost_s", "x" * 100,
             "t.max_lost_s: expected a floating-point number, got a string ('xxx")):
        (r,) = node.set_parameters([Parameter(name, value=value)])
        # refused in words (rclpy's own check said "Wrong parameter type, expected '4' got '3'"), unchanged
        assert not r.successful and r.reason.startswith(reason), (name, r.reason)
        assert len(r.reason) < 140 and "'" not in r.reason.split("got")[0], r.reason
        assert plain_value(node.get_parameter(name).value) == values[name], name
    assert state["cfg"] is before
    # atomically with a valid change: nothing applied; one refusal names each wrong value
    r = node.set_parameters_atomically([Parameter("count", value=5), Parameter("mode", value=3)])
    assert not r.successful and r.reason == "mode: expected a string, got an integer (3)"
    assert state["cfg"] is before and node.get_parameter("count").value == 3
    # the next valid change goes through (no refusal left over), a read-only one is still refused as such
    (r,) = node.set_parameters([Parameter("count", value=6)])
    assert r.successful and state["cfg"].count == 6
    (r,) = node.set_parameters([Parameter("enabled", value="yes")])
    assert not r.successful and "read-only" in r.reason
    (r,) = node.set_parameters([Parameter("count", value=7)])
    assert r.successful and state["cfg"].count == 7


def test_a_change_rejected_by_another_callback_is_not_applied(context):
    from rcl_interfaces.msg import SetParametersResult

    node = make_node(context)
    state = {"cfg": declare_config(node, DemoConfig)}
    add_on_set_validator(node, DemoConfig, lambda: state["cfg"], lambda c: state.update(cfg=c))
    node.add_on_set_parameters_callback(lambda params: SetParametersResult(successful=False, reason="no"))
    (r,) = node.set_parameters([Parameter("count", value=4)])
    assert not r.successful and state["cfg"].count == 3


def test_tracker_parameters_change_at_run_time_without_losing_tracks(context):
    import numpy as np

    from ros2_tracker.core import Tracker

    node = make_node(context)
    tracker = Tracker(declare_config(node, TrackerConfig))
    add_on_set_validator(node, TrackerConfig, lambda: tracker.config, tracker.set_config)
    box = np.array([[10.0, 10, 50, 90]])
    for k in range(3):
        tracker.update(box + k, stamp=0.1 * k)
    ids = tracker.tracks().ids.tolist()
    (r,) = node.set_parameters([Parameter("trajectory_horizon_s", value=1.0)])
    assert r.successful and tracker.config.trajectory_horizon_s == 1.0
    assert tracker.tracks().ids.tolist() == ids
    assert tracker.predict_trajectories().centres.shape[1] == 5  # 1.0 s / 0.2 s
