"""tracker_node with appearance: a real node process, real TUD-Campus frames, the real OSNet model.

The test publishes TUD-Campus images and Faster R-CNN detections (``det_frcnn.txt``) frame by frame
over DDS (as class 2: appearance is not for people only), waiting for each TrackArray (lock-step),
and compares the node's tracks with the core tracker fed the same arrays and the same OSNet
embeddings in this process. The leftmost person is hidden for five frames with ``max_lost_s``
short: with appearance they keep their id (motion alone gives them a new one, checked too). Then:
degenerate boxes and an undecodable image (tracked, the latter without appearance), run-time
``reid_model_path`` changes (missing and garbage files rejected with the reason while tracking goes
on; the same model under another path accepted; a model with another embedding size accepted with a
tracker reset), and start-up errors (exit status 2).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
msgs = pytest.importorskip("ros2_tracker.msg",
                           reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
cv2 = pytest.importorskip("cv2", reason="opencv-python is not installed")

from conftest import require_shared  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_graph import TrackerNodeClient, stop_node  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros2_tracker.appearance import EmbedderConfig, create_embedder  # noqa: E402
from ros2_tracker.core.tracker import Tracker, TrackerConfig  # noqa: E402
from ros2_tracker.io.mot import read_mot  # noqa: E402
from ros2_tracker.io.params import load_config  # noqa: E402
from ros2_tracker.nodes.conversions import (  # noqa: E402
    arrays_to_detections,
    detections_to_arrays,
    seconds_to_stamp,
    track_array_to_arrays,
)
from ros2_tracker.nodes.image_conversions import bgr_to_image_msg  # noqa: E402
from ros2_tracker.nodes.node_config import tracker_node_param_names  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "tracker.yaml"
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
T0 = 100.0   # stamp of frame 1 [s]
FPS = 25.0   # TUD-Campus
MAX_LOST_S = 0.1
HIDDEN = range(6, 11)  # frames in which the leftmost person is not detected
CLASS = 2  # not COCO's person (0): appearance is used for any class


# ------------------------------------------------------------------------------------ helpers
class Harness(TrackerNodeClient):
    """The test's side of the graph: publishes frames, collects tracks and timing, sets parameters."""

    def __init__(self, context: Context) -> None:
        super().__init__(context, "appearance_test")

    def wait_for_node(self, proc: subprocess.Popen, log: Path) -> None:
        super().wait_for_node(proc, log, timeout=30.0, images=True)

    def frame(self, stamp_s: float, image: Image, detections) -> object:
        """Publish the image, then its detections; return the TrackArray with that stamp."""
        image.header = detections.header = Header(frame_id="camera", stamp=seconds_to_stamp(stamp_s))
        return self.publish_frame(detections, image, 10.0)

    def set_string(self, name: str, value: str):
        return self.set_parameter(name, value, 20.0)


@pytest.fixture
def start_node(tracker_node_graph):
    """tracker_node processes and a private rclpy context (see conftest.tracker_node_graph)."""
    return tracker_node_graph


def tud_frames(seq: Path, n: int):
    """Frames 1..n of TUD-Campus: (bgr image, (D, 4) xyxy det_frcnn boxes left to right, (D,) scores)."""
    det = read_mot(seq / "det" / "det_frcnn.txt")
    out = []
    for f in range(1, n + 1):
        rows = det.frames == f
        tlwh = det.boxes_tlwh[rows]
        boxes = np.c_[tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:]]
        order = np.argsort(boxes[:, 0], kind="stable")
        image = cv2.imread(str(seq / "img1" / f"{f:06d}.jpg"))
        assert image is not None, f"cannot read frame {f} of {seq}"
        out.append((image, boxes[order], det.scores[rows][order]))
    return out


def tiny_onnx_embedder(path: Path, size: tuple[int, int] = (256, 128)) -> Path:
    """A valid re-ID-shaped ONNX model with 3-d embeddings (mean colour): N x 3 x H x W -> N x 3."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (needed to build a test model)")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["embeddings"], axis=1)],
        "mean_colour",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, *size])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["N", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def confirmed(ids, states) -> list[int]:
    return sorted(int(i) for i, s in zip(ids, states, strict=True) if s == 1)


# ------------------------------------------------------------------------------------ tests
@pytest.mark.slow
@pytest.mark.data
def test_node_tracks_tud_campus_with_appearance_and_swaps_models(start_node, tmp_path):
    seq = require_shared("data", "TUD-Campus")
    osnet = require_shared("models", "osnet_x0_25_msmt17.onnx")
    start, context = start_node
    proc, log = start("use_images:=true", "use_appearance:=true", f"reid_model_path:={osnet}",
                      "image_qos:=reliable", "image_wait_s:=5.0", f"max_lost_s:={MAX_LOST_S}")
    h = Harness(context)
    frames = tud_frames(seq, 22)

    # the reference: the core tracker with the same arrays (through the message) and embeddings
    cfg = load_config(TrackerConfig, CONFIG, allowed_extra=tracker_node_param_names(), max_lost_s=MAX_LOST_S)
    embedder = create_embedder(EmbedderConfig(model_path=str(osnet)))
    reference, motion_only = Tracker(cfg), Tracker(cfg)
    h.wait_for_node(proc, log)

    def step(k: int, boxes, scores, image=None, *, appearance=embedder, check_motion=False):
        """Frame k through the node and the reference; returns the node's TrackArrays."""
        bgr = frames[k - 1][0]
        stamp = T0 + (k - 1) / FPS
        msg = arrays_to_detections(boxes, scores, np.full(len(boxes), CLASS), Header(), msgs)
        msg.header.stamp = seconds_to_stamp(stamp)
        got = track_array_to_arrays(h.frame(stamp, image or bgr_to_image_msg(bgr, Image, "bgr8"), msg))
        det = detections_to_arrays(msg)  # the node's view: float32 boxes, invalid ones dropped
        feats = None if appearance is None else appearance.embed(bgr, det.boxes_xyxy)
        want = reference.update(det.boxes_xyxy, det.scores, det.classes, stamp=det.stamp_s, features=feats)
        assert confirmed(got.ids, got.states) == confirmed(want.ids, want.states), f"frame {k}"
        if check_motion:
            motion_only.update(det.boxes_xyxy, det.scores, det.classes, stamp=det.stamp_s)
        return got

    # 1. 16 frames; the leftmost person is hidden in frames 6-10 and comes back with the same id
    out = {}
    for k in range(1, 17):
        _, boxes, scores = frames[k - 1]
        if k in HIDDEN:
            boxes, scores = boxes[1:], scores[1:]
        if k == 8:  # while the person is hidden: a change of threads reloads the model, memories are kept
            assert h.set_parameter("reid_num_threads", 2, 20.0).successful
        out[k] = step(k, boxes, scores, check_motion=True)
    leftmost = {k: int(a.ids[np.argmin(np.where(a.states == 1, a.boxes_xyxy[:, 0], np.inf))]) for k, a in
                out.items() if k in (5, 16)}
    assert leftmost[5] == leftmost[16], "the hidden person did not get their id back"
    assert set(out[16].ids.tolist()) <= set(out[1].ids.tolist()), "a known person got a new id"
    motion = motion_only.tracks()
    assert leftmost[5] not in confirmed(motion.ids, motion.states), \
        "motion alone also keeps the id: the scenario does not test appearance"
    assert h.spin_until(lambda: len(h.timing) >= 32, 5.0)
    timing = [json.loads(m.data) for m in h.timing]
    stages = {(round(t["stamp"] * 1e6), t["stage"]) for t in timing}
    for k in range(1, 17):
        us = round((T0 + (k - 1) / FPS) * 1e6)
        assert (us, "embed") in stages and (us, "tracker") in stages, f"timing of frame {k}"
    embed_s = [t["seconds"] for t in timing if t["stage"] == "embed"]
    assert all(0 < s < 5 for s in embed_s) and set(timing[0]) == {"stamp", "stage", "seconds"}

    # 2. degenerate boxes (zero width: dropped; outside the image: no crop) do not break the frame
    _, boxes, scores = frames[16]
    bad_boxes = np.vstack([boxes, [[100, 100, 100, 200], [2000, 2000, 2060, 2150]]])
    got = step(17, bad_boxes, np.r_[scores, 0.9, 0.9])
    assert set(confirmed(got.ids, got.states)) & set(out[16].ids.tolist())

    # 3. an image that cannot be converted: tracked without appearance
    broken = bgr_to_image_msg(frames[17][0], Image, "bgr8")
    broken.height += 7  # data no longer matches step * height
    step(18, *frames[17][1:], image=broken, appearance=None)

    # 4. run-time model changes: missing and garbage files rejected, tracking goes on with OSNet
    r = h.set_string("reid_model_path", str(tmp_path / "missing.onnx"))
    assert not r.successful and "reid_model_path" in r.reason and "file not found" in r.reason, r.reason
    assert "osnet_x0_25_msmt17.onnx" in r.reason and "keeps running" in r.reason
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not an ONNX model\x00\x01" * 40)
    r = h.set_string("reid_model_path", str(garbage))
    assert not r.successful and "not a loadable ONNX model" in r.reason, r.reason
    step(19, *frames[18][1:])

    # 5. a valid model is accepted: the same OSNet under another path (same size: no reset) ...
    link = tmp_path / "osnet_copy.onnx"
    link.symlink_to(osnet)
    assert h.set_string("reid_model_path", str(link)).successful
    before = step(20, *frames[19][1:])
    # ... and a model with 3-d embeddings: accepted, the tracker is reset (new ids), tracking goes on
    assert h.set_string("reid_model_path", str(tiny_onnx_embedder(tmp_path / "tiny3d.onnx"))).successful
    reference.reset()
    tiny = create_embedder(EmbedderConfig(model_path=str(tmp_path / "tiny3d.onnx")))
    after = step(21, *frames[20][1:], appearance=tiny)
    assert len(after.ids) and after.ids.min() > before.ids.max()
    # ... and a model of another crop size (train-reid's 128 x 64) by its path alone: its size is taken
    small = tiny_onnx_embedder(tmp_path / "tiny128.onnx", (128, 64))
    assert h.set_string("reid_model_path", str(small)).successful
    step(22, *frames[21][1:], appearance=create_embedder(EmbedderConfig(model_path=str(small),
                                                                       input_size=[128, 64])))

    assert proc.poll() is None, "tracker_node died"
    assert stop_node(proc, log) == 0, log.read_text()
    text = log.read_text()
    assert "appearance: onnxruntime:osnet_x0_25_msmt17.onnx, 512-d" in text
    assert "dropped 1 of" in text and "give no usable crop" in text
    assert "cannot use the image" in text and "tracked without appearance" in text
    assert "re-ID model change rejected" in text and "now onnxruntime:tiny3d.onnx, 3-d" in text
    assert "resetting the tracker" in text and "Traceback" not in text
    assert "reid_input_size: [128, 64], the crop size of" in text and "now onnxruntime:tiny128.onnx" in text


@pytest.mark.parametrize("params,expected", [
    (["use_appearance:=true", "reid_model_path:=osnet.onnx"], ["use_appearance", "use_images:=true"]),
    (["use_images:=true", "use_appearance:=true"], ["reid_model_path", "must name a re-ID ONNX model"]),
    (["use_cmc:=true"], ["use_cmc", "needs use_images:=true and tracker:=core"]),
    (["use_images:=true", "use_appearance:=true", "reid_model_path:=/nonexistent/reid.onnx"],
     ["reid_model_path", "/nonexistent/reid.onnx", "file not found"]),
], ids=["without_images", "without_model", "cmc_without_images", "missing_model"])
def test_appearance_start_up_errors_exit_non_zero_with_the_reason(start_node, params, expected):
    start, _ = start_node
    proc, log = start(*params)
    assert proc.wait(30) == 2
    text = log.read_text()
    assert all(e in text for e in expected) and "Traceback" not in text, text


def test_an_embedder_runtime_that_is_missing_is_named_by_its_parameter(tmp_path):
    """Without torch, reid_backend: torch failed with "reid_re-ID embedder (torch): no backend ..." (the
    reid_ prefix is for messages that start with a field of the embedder's config)."""
    import sys

    (tmp_path / "x.pt").write_bytes(b"")
    code = ("import sys; sys.modules['torch'] = None  # as where torch is not installed\n"
            "from ros2_tracker.appearance import EmbedderConfig\n"
            "from ros2_tracker.core.config import ConfigError\n"
            "from ros2_tracker.nodes.tracker_node import _load_embedder\n"
            "for c in (EmbedderConfig(backend='torch', model_path=sys.argv[1]), EmbedderConfig()):\n"
            "    try:\n"
            "        _load_embedder(c)\n"
            "    except ConfigError as exc:\n"
            "        print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.pt")], capture_output=True,
                         text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stderr
    assert lines[0].startswith("reid_backend torch: ") and "torch is not installed" in lines[0]
    assert lines[1].startswith("reid_model_path is not set")
