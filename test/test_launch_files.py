"""launch/*.launch.py, config/pipeline.yaml and config/tracker.rviz, checked statically.

``launch`` and ``launch_ros`` are not on PyPI, so the launch files are never imported here: they are
read with :func:`ros2_tracker.launching.parse_launch_file` (the same reader ``ros2-tracker launch`` uses)
and with :mod:`ast`. A real ROS 2 install runs them in test/launch/test_pipeline_launch.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from ros2_tracker.launching import (
    LaunchArgumentError,
    LaunchFileError,
    NodeSpec,
    parse_launch_arguments,
    parse_launch_file,
)

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"
LAUNCH_FILES = sorted(LAUNCH.glob("*.launch.py"))
PIPELINE = LAUNCH / "pipeline.launch.py"
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "PythonExpression", "ExecuteProcess", "system",
                   "popen", "Popen", "run", "check_output", "check_call", "call"}


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_the_two_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {"tracker.launch.py", "pipeline.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=_ids(LAUNCH_FILES))
def test_every_executable_is_a_node_module_with_main(path):
    info = parse_launch_file(path)
    ours = [exe for pkg, exe in info.executables if pkg == "ros2_tracker"]
    assert ours, f"{path.name} starts none of our nodes"
    for exe in ours:
        module = REPO / "ros2_tracker" / "nodes" / f"{exe}.py"
        assert module.is_file(), f"{path.name}: executable {exe!r} has no module {module}"
        tree = ast.parse(module.read_text())
        mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
        assert mains, f"{module.name} has no top-level main()"
        assert "__main__" in module.read_text(), f"{module.name} cannot run with python -m"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=_ids(LAUNCH_FILES))
def test_every_params_file_exists_and_is_a_ros_parameter_file(path):
    files = parse_launch_file(path).params_files()
    assert files
    for f in files:
        assert f.is_file(), f"{path.name} names {f}, which does not exist"
        assert f.parent == REPO / "config"
        doc = yaml.safe_load(f.read_text())
        assert isinstance(doc, dict) and doc
        for key, block in doc.items():
            assert isinstance(block, dict) and isinstance(block.get("ros__parameters"), dict), \
                f"{f.name}: section {key!r} has no ros__parameters mapping"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=_ids(LAUNCH_FILES))
def test_every_argument_used_is_declared_and_every_declared_one_is_used(path):
    info = parse_launch_file(path)
    used, declared = info.used_arguments(), set(info.arguments)
    assert used <= declared, f"used but not declared: {used - declared}"
    assert declared <= used, f"declared but never used: {declared - used}"
    for arg in info.arguments.values():
        assert arg.description, f"{path.name}: argument {arg.name} has no description"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=_ids(LAUNCH_FILES))
def test_launch_files_run_nothing_but_launch_actions(path):
    tree = ast.parse(path.read_text())
    allowed_imports = {"os", "ament_index_python.packages", "launch", "launch.actions", "launch.conditions",
                       "launch.substitutions", "launch_ros.actions", "launch_ros.parameter_descriptions"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= allowed_imports, ast.unparse(node)
        elif isinstance(node, ast.ImportFrom):
            assert node.module in allowed_imports, ast.unparse(node)
        elif isinstance(node, ast.Call):
            func = node.func
            name = getattr(func, "id", None) or getattr(func, "attr", "")
            assert name not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno}: {ast.unparse(func)}()"


def test_cmake_installs_every_node_executable_and_the_launch_and_config_folders():
    cmake = (REPO / "CMakeLists.txt").read_text()
    listed = re.search(r"set\(ROS2_TRACKER_NODES\s+([^)]*)\)", cmake)
    assert listed, "CMakeLists.txt has no set(ROS2_TRACKER_NODES ...)"
    installed = set(listed.group(1).split())
    assert re.search(r"install\(PROGRAMS .*DESTINATION lib/\$\{PROJECT_NAME\}\)", cmake)
    assert "foreach(_dir launch config)" in cmake and "DESTINATION share/${PROJECT_NAME}" in cmake
    for path in LAUNCH_FILES:
        for pkg, exe in parse_launch_file(path).executables:
            if pkg == "ros2_tracker":
                assert exe in installed, f"{path.name} starts {exe}, which CMakeLists.txt does not install"


def _pipeline(**values: str) -> dict[str, NodeSpec]:
    specs = parse_launch_file(PIPELINE).node_specs({"source": "/data/seq", **values})
    return {s.name: s for s in specs}


@pytest.mark.parametrize(("values", "nodes"), [
    ({}, {"replay", "tracker"}),
    ({"use_detector": "true"}, {"replay", "detector", "tracker"}),
    ({"record": "true"}, {"replay", "tracker", "recorder"}),
    ({"camera": "true", "use_detector": "true"}, {"detector", "tracker"}),
    ({"rviz": "true"}, {"replay", "tracker", "rviz2"}),
])
def test_pipeline_arguments_switch_the_right_nodes(values, nodes):
    assert set(_pipeline(**values)) == nodes


def test_pipeline_replays_recorded_detections_only_without_the_detector():
    assert _pipeline()["replay"].params["publish_detections"] is True
    assert _pipeline(use_detector="true")["replay"].params["publish_detections"] is False


def test_pipeline_passes_arguments_as_typed_parameters_and_remaps():
    specs = _pipeline(rate="0", record="true", bag="out/bag", namespace="cam1", image_topic="/cam/image_raw",
                      use_detector="false")
    replay, recorder = specs["replay"], specs["recorder"]
    assert replay.params["rate"] == 0.0 and isinstance(replay.params["rate"], float)
    assert replay.params["source"] == "/data/seq"
    assert recorder.params["output"] == "out/bag"
    assert all(s.namespace == "/cam1" for s in specs.values())
    # the replay and the detector take image_topic as a parameter: with compressed images they use
    # <image_topic>/compressed, which a remap of 'image' would not move; the tracker reads raw images only
    assert replay.params["image_topic"] == "/cam/image_raw" and not replay.remaps
    detector = _pipeline(use_detector="true", image_topic="/cam/image_raw")["detector"]
    assert detector.params["image_topic"] == "/cam/image_raw" and not detector.remaps
    assert ("image", "/cam/image_raw") in specs["tracker"].remaps
    assert replay.shutdown_on_exit and not specs["tracker"].shutdown_on_exit
    assert specs["tracker"].params_files == (REPO / "config" / "tracker.yaml",)
    assert replay.params_files == (REPO / "config" / "pipeline.yaml",)
    cmd = replay.command("python")
    assert cmd[:4] == ["python", "-m", "ros2_tracker.nodes", "replay_node"]
    assert ["-r", "__ns:=/cam1"] == cmd[cmd.index("__ns:=/cam1") - 1:cmd.index("__ns:=/cam1") + 1]
    assert 'rate:=0.0' in cmd and 'source:="/data/seq"' in cmd


def test_a_replays_subscriptions_are_reliable_a_cameras_as_the_params_file_says():
    """A replay publishes reliably and nothing of it may be lost: images (the detector's, the tracker's)
    and the tracker's depth, camera_info and imu come reliable; a camera driver's are the params file's
    best effort (a reliable reader would not match a best-effort driver)."""
    replayed = _pipeline(use_detector="true")
    assert replayed["detector"].params["image_qos"] == "reliable"
    assert {k: replayed["tracker"].params[k] for k in ("image_qos", "sensor_qos")} == {
        "image_qos": "reliable", "sensor_qos": "reliable"}
    live = _pipeline(camera="true", use_detector="true")
    assert not {"image_qos", "sensor_qos"} & (set(live["tracker"].params) | set(live["detector"].params))


def test_tracker_launch_file_matches_the_pipelines_tracker():
    alone = parse_launch_file(LAUNCH / "tracker.launch.py").node_specs({"use_sim_time": "true"})
    assert [s.name for s in alone] == ["tracker"] and alone[0].module == "tracker_node"
    assert alone[0].params_files == _pipeline()["tracker"].params_files
    assert alone[0].params == {"use_sim_time": True}


def test_tracker_launch_file_remaps_an_rgbd_cameras_topics():
    """A RealSense's topics for use_depth (and a robot's gyro for use_imu), by launch arguments."""
    depth, info = "/camera/aligned_depth_to_color/image_raw", "/camera/color/camera_info"
    (spec,) = parse_launch_file(LAUNCH / "tracker.launch.py").node_specs({
        "depth_topic": depth, "camera_info_topic": info, "imu_topic": "/imu/data"})
    assert {("depth", depth), ("camera_info", info), ("imu", "/imu/data")} <= set(spec.remaps)
    (default,) = parse_launch_file(LAUNCH / "tracker.launch.py").node_specs({})
    assert {("depth", "depth"), ("camera_info", "camera_info"), ("imu", "imu")} <= set(default.remaps)


@pytest.mark.parametrize(("values", "message"), [
    ({"foo": "1"}, "valid: source, rate"),
    ({"rviz": "maybe"}, "not one of true, false"),
])
def test_bad_launch_arguments_are_refused_with_the_reason(values, message):
    with pytest.raises(LaunchArgumentError, match=message):
        parse_launch_file(PIPELINE).node_specs(values)


def test_launch_arguments_must_be_name_value_pairs():
    assert parse_launch_arguments(["a:=1", "b:=x:=y", "c:="]) == {"a": "1", "b": "x:=y", "c": ""}
    with pytest.raises(LaunchArgumentError, match="name:=value"):
        parse_launch_arguments(["a=1"])


def test_pipeline_yaml_sets_only_parameters_of_its_nodes():
    pytest.importorskip("rclpy", reason="the node modules import rclpy")
    from ros2_tracker.detection import DetectorConfig
    from ros2_tracker.nodes.detector_node import DetectorNodeConfig
    from ros2_tracker.nodes.recorder_node import RecorderConfig
    from ros2_tracker.nodes.replay_node import ReplayConfig

    known = {"replay": ReplayConfig.specs(), "recorder": RecorderConfig.specs(),
             "detector": [*DetectorConfig.specs(), *DetectorNodeConfig.specs()]}
    doc = yaml.safe_load((REPO / "config" / "pipeline.yaml").read_text())
    assert set(doc) == {f"/**/{n}" for n in known}
    for key, block in doc.items():
        names = {s.name for s in known[key.removeprefix("/**/")]}
        unknown = set(block["ros__parameters"]) - names
        assert not unknown, f"{key}: unknown parameters {unknown}"
    # the launch arguments' parameters stay out of the file (they would be overridden anyway)
    assert "source" not in doc["/**/replay"]["ros__parameters"]
    assert "output" not in doc["/**/recorder"]["ros__parameters"]


def test_rviz_config_shows_the_tracks_in_the_camera_frame():
    doc = yaml.safe_load((REPO / "config" / "tracker.rviz").read_text())
    manager = doc["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "camera"
    shown = {(d["Class"], d["Topic"]["Value"]) for d in manager["Displays"]}
    assert ("rviz_default_plugins/MarkerArray", "tracks/markers") in shown
    assert ("rviz_default_plugins/Image", "tracks/image") in shown
    assert parse_launch_file(PIPELINE).node_specs({"source": "x", "rviz": "true"})[-1].arguments == (
        "-d", str(REPO / "config" / "tracker.rviz"), "-f", "camera")
    # a camera driver's frame: the fixed frame follows it (markers carry the images' frame_id)
    live = {"camera": "true", "rviz": "true", "fixed_frame": "cam_optical"}
    assert parse_launch_file(PIPELINE).node_specs(live)[-1].arguments[-2:] == ("-f", "cam_optical")


@pytest.mark.parametrize(("body", "message"), [
    ("    x = eval('1')\n    return LaunchDescription([])", "call of eval"),
    ("    import subprocess\n    return LaunchDescription([])", "Import statement"),
    ("    return LaunchDescription([Node(package='p', executable=LaunchConfiguration('nope'))])",
     "nope used but not declared"),
    ("    return LaunchDescription([Node(package='p', executable='e', parameters=[{'a': 1}, 'f.yaml'])])",
     None),
])
def test_static_reader_refuses_what_it_cannot_mirror(tmp_path, body, message):
    path = tmp_path / "x.launch.py"
    path.write_text("from launch import LaunchDescription\nfrom launch_ros.actions import Node\n"
                    "from launch.substitutions import LaunchConfiguration\n\n\n"
                    f"def generate_launch_description():\n{body}\n")
    if message is None:  # a file after a dict would change precedence on the command line
        with pytest.raises(LaunchFileError, match="parameter file after a parameter dict"):
            parse_launch_file(path).node_specs({})
        return
    with pytest.raises(LaunchFileError, match=message):
        parse_launch_file(path)
