"""detector_node end to end: replayed TUD-Campus frames in, person detections out (real YOLOX model).

replay_node publishes the first frames (images only) to detector_node; this test listens to the
detections and the detector's timing, checks stamps/headers and that the boxes find the annotated
people, sends the detector bad images (it must log and keep going), and checks start-up errors for a
missing or corrupt model.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from ros2_tracker.launching import private_domain_id

pytestmark = [pytest.mark.ros, pytest.mark.data]

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
tracker_msgs = pytest.importorskip("ros2_tracker.msg",
                                   reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

from conftest import require_shared  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header, String  # noqa: E402

from ros2_tracker.core.boxes import tlwh_to_xyxy  # noqa: E402
from ros2_tracker.core.costs import iou_matrix  # noqa: E402
from ros2_tracker.io.mot import read_mot  # noqa: E402
from ros2_tracker.nodes.conversions import detections_to_arrays  # noqa: E402


def _sibling(name: str):
    """The graph helpers of test_replay_recorder.py (test files are not importable by name here)."""
    spec = importlib.util.spec_from_file_location(f"_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_graph = _sibling("test_replay_recorder")
Listener, expected_stamps, ros_env, start, stop = (
    _graph.Listener, _graph.expected_stamps, _graph.ros_env, _graph.start, _graph.stop)
N = 5
_OFFSET = 10  # ROS_DOMAIN_ID offset, distinct from test_replay_recorder's


def test_detector_on_replayed_frames_publishes_person_detections(tmp_path):
    seq = require_shared("data", "TUD-Campus")
    model = require_shared("models", "yolox_nano.onnx")
    env = ros_env(tmp_path, _OFFSET)
    listener = Listener(env, {"/detections": tracker_msgs.Detection2DArray, "/detector_node/timing": String})
    det = start("detector_node", [f"model_path:={model}", "image_qos:=reliable"], env, tmp_path / "det.log")
    try:
        # the detector publishes as soon as images come: it must know this listener by then
        assert listener.wait_for_publishers("/detections", 1, 30.0) == 1, (tmp_path / "det.log").read_text()
        time.sleep(0.3)
        replay = start("replay_node", [f"source:={seq}", f"max_frames:={N}", "rate:=0.0",
                                       "publish_detections:=false", "wait_for_subscribers:=1",
                                       "wait_for_subscribers_timeout_s:=30.0"], env, tmp_path / "replay.log")
        assert replay.wait(60) == 0, (tmp_path / "replay.log").read_text()
        assert listener.wait_for("/detections", N, 20.0) == N, (tmp_path / "det.log").read_text()
        listener.wait_for("/detector_node/timing", N, 5.0)
        msgs = [deserialize_message(d, tracker_msgs.Detection2DArray)
                for d in listener.received["/detections"]]
        assert listener.stamps("/detections") == expected_stamps(N, 25.0)  # the images' stamps
        assert {m.header.frame_id for m in msgs} == {"camera"}
        gt = read_mot(seq / "gt" / "gt.txt")
        for k, msg in enumerate(msgs, start=1):
            arrays = detections_to_arrays(msg)
            assert len(arrays.scores) >= 3 and set(arrays.classes.tolist()) == {0}
            assert (arrays.scores >= 0.3).all()
            truth = tlwh_to_xyxy(gt.boxes_tlwh[gt.frames == k])
            best = iou_matrix(truth, arrays.boxes_xyxy).max(axis=1)
            assert (best >= 0.5).sum() >= 3, (k, best)  # it finds the annotated people
        timing = [json.loads(deserialize_message(d, String).data)
                  for d in listener.received["/detector_node/timing"]]
        assert [t["stage"] for t in timing] == ["detector"] * N
        assert all(0 < t["seconds"] < 2 for t in timing)

        # bad images: logged and skipped, the node keeps detecting
        node = listener.node
        pub = node.create_publisher(Image, "/image",
                                    QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        end = time.monotonic() + 10
        while pub.get_subscription_count() < 1 and time.monotonic() < end:
            time.sleep(0.02)
        header = Header(frame_id="camera")
        header.stamp.sec = 50
        pub.publish(Image(header=header, height=4, width=4, encoding="32FC1", step=16, data=bytes(64)))
        pub.publish(Image(header=header, height=4, width=4, encoding="bgr8", step=12, data=bytes(10)))
        pub.publish(Image(header=header, height=4, width=4, encoding="bgr8", step=12, data=bytes(11)))
        header.stamp.sec = 51
        good = np.zeros((48, 64, 3), np.uint8)
        pub.publish(Image(header=header, height=48, width=64, encoding="bgr8", step=192, data=good.tobytes()))
        assert listener.wait_for("/detections", N + 1, 10.0) == N + 1
        assert listener.stamps("/detections")[-1] == 51_000_000_000  # only the good one came out
        assert det.poll() is None
        log = (tmp_path / "det.log").read_text()
        # each kind of bad image is told at once (a 5 s throttle showed the first alone); a second of a
        # kind within the window is not
        assert "(1 so far): unsupported image encoding '32FC1'" in log, log
        assert "(2 so far): data has 10 bytes" in log and "(3 so far)" not in log, log
    finally:
        assert stop(det, signal.SIGINT) == 0
        listener.close()
    log = (tmp_path / "det.log").read_text()
    assert "Traceback" not in log
    # the node's last words: the totals by kind (numbers taken out of the kind)
    assert ("3 image(s) skipped in all: 2 x data has # bytes, expected step * height = # * # = # "
            "(bgr8, width #); 1 x unsupported image encoding '32FC1'") in log, log


def test_detector_node_exits_with_a_clear_error_on_a_bad_model(tmp_path):
    env = ros_env(tmp_path, _OFFSET + 1)
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x01garbage" * 100)
    cases = {"missing": ([f"model_path:={tmp_path / 'nope.onnx'}"], "file not found"),
             "folder": ([f"model_path:={tmp_path}"], f"model_path: {tmp_path}: a folder, not a model file"),
             "corrupt": ([f"model_path:={tmp_path / 'corrupt.onnx'}"], "not a loadable ONNX model"),
             "unset": ([], "model_path is not set"),
             "input": (["model_path:=x.onnx", "input:=jpeg"], "input")}
    procs = {k: start("detector_node", p, env, tmp_path / f"{k}.log") for k, (p, _) in cases.items()}
    for key, proc in procs.items():
        assert proc.wait(30) == 2, key
        log = (tmp_path / f"{key}.log").read_text()
        assert cases[key][1] in log and "Traceback" not in log, (key, log)


def _one_class_yolox(path: Path) -> Path:
    """A YOLOX-shaped ONNX model with one class: 1 x 3 x 416 x 416 -> 1 x 3549 x 6 (nothing detected)."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (needed to build a test model)")
    from onnx import TensorProto, helper, numpy_helper

    consts = [numpy_helper.from_array(np.zeros((1, 3549, 6), np.float32), "c"),
              numpy_helper.from_array(np.zeros((1, 1, 1), np.float32), "zero"),
              numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape")]
    nodes = [helper.make_node("ReduceMean", ["images"], ["m"], keepdims=1),  # output = c + 0 * mean(image)
             helper.make_node("Reshape", ["m", "shape"], ["m3"]),
             helper.make_node("Mul", ["m3", "zero"], ["z"]),
             helper.make_node("Add", ["c", "z"], ["output"])]
    graph = helper.make_graph(nodes, "one_class", [helper.make_tensor_value_info(
        "images", TensorProto.FLOAT, [1, 3, 416, 416])], [helper.make_tensor_value_info(
            "output", TensorProto.FLOAT, [1, 3549, 6])], consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_classes_change_the_model_cannot_apply_is_refused(tmp_path, monkeypatch):
    """classes 0..79 are valid COCO ids, but a one-class model has only 0: the change was accepted and
    stored while the detector kept [0] (logged only), so parameter and detector disagreed for good."""
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from ros2_tracker.nodes.detector_node import DetectorNode

    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "ros_log"))
    ctx = Context()
    rclpy.init(context=ctx, domain_id=private_domain_id(__import__("os").getpid() + 20))
    try:
        node = DetectorNode(context=ctx, parameter_overrides=[
            Parameter("model_path", value=str(_one_class_yolox(tmp_path / "one.onnx")))])
        (r,) = node.set_parameters([Parameter("classes", value=[3])])
        assert not r.successful and "not in the model's 1 classes" in r.reason, r.reason
        assert list(node.get_parameter("classes").value) == [0] and node.detector.config.classes == [0]
        (r,) = node.set_parameters([Parameter("classes", Parameter.Type.INTEGER_ARRAY, [])])  # all: fine
        assert r.successful and node.detector.config.classes == []
        node.destroy_node()
    finally:
        ctx.try_shutdown()
