"""YOLOX detector: real detections on TUD-Campus, decoding, letterbox geometry, config and error handling."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.core.boxes import tlwh_to_xyxy
from ros2_tracker.core.config import ConfigError
from ros2_tracker.core.costs import iou_matrix
from ros2_tracker.detection import Detections, DetectorConfig
from ros2_tracker.detection.yolox import (
    PAD_VALUE,
    ModelLoadError,
    YoloxDetector,
    anchor_grid,
    detect_sequence,
    letterbox,
    letterbox_scale,
    unletterbox_boxes,
)
from ros2_tracker.io.mot import MotFormatError, read_mot


@pytest.fixture(scope="module")
def model_path():
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    return str(require_shared("models", "yolox_nano.onnx"))


@pytest.fixture(scope="module")
def detector(model_path):
    return YoloxDetector(DetectorConfig(model_path=model_path, num_threads=1))


@pytest.fixture(scope="module")
def tud():
    seq = require_shared("data", "TUD-Campus")
    image = cv2.imread(str(seq / "img1" / "000001.jpg"))
    gt = read_mot(seq / "gt" / "gt.txt")
    return seq, image, tlwh_to_xyxy(gt.boxes_tlwh[gt.frames == 1])


# --- real model on real frames ---------------------------------------------------------------------

@pytest.mark.data
def test_finds_the_annotated_people_on_a_tud_campus_frame(detector, tud):
    _, image, gt_xyxy = tud
    det = detector.detect(image)
    assert det.boxes_xyxy.dtype == np.float32 and det.boxes_xyxy.shape == (len(det), 4)
    assert det.scores.dtype == np.float32 and det.classes.dtype == np.int64
    best_iou = iou_matrix(gt_xyxy, det.boxes_xyxy).max(axis=1)
    assert (best_iou > 0.5).sum() >= 5, best_iou  # 6 people annotated in frame 1
    assert (det.classes == 0).all()
    assert (det.scores >= 0.3).all() and (np.diff(det.scores) <= 0).all()
    h, w = image.shape[:2]
    assert (det.boxes_xyxy[:, :2] >= 0).all() and (det.boxes_xyxy[:, 2] <= w).all()
    assert (det.boxes_xyxy[:, 3] <= h).all()


@pytest.mark.data
def test_grey_image_gives_the_same_people(detector, tud):
    _, image, gt_xyxy = tud
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    det = detector.detect(grey)
    assert (iou_matrix(gt_xyxy, det.boxes_xyxy).max(axis=1) > 0.5).sum() >= 4


@pytest.mark.data
def test_filters_score_count_and_class(model_path, detector, tud):
    image = tud[1]
    everything = DetectorConfig(model_path=model_path, classes=[], score_threshold=0.05)
    full = YoloxDetector(everything).detect(image)
    assert len(full) > len(detector.detect(image))
    top2 = YoloxDetector(everything.replace(max_detections=2)).detect(image)
    np.testing.assert_allclose(top2.scores, full.scores[:2])
    strict = YoloxDetector(DetectorConfig(model_path=model_path, score_threshold=0.8)).detect(image)
    assert 0 < len(strict) < len(detector.detect(image)) and (strict.scores >= 0.8).all()
    # classes=[] lets other COCO classes through; a class filter keeps only the listed ones
    others = full.classes[full.classes != 0]
    assert len(others), "expected some non-person detections at score 0.05"
    only = YoloxDetector(DetectorConfig(model_path=model_path, classes=[int(others[0])],
                                        score_threshold=0.05)).detect(image)
    assert len(only) and (only.classes == others[0]).all()


@pytest.mark.data
def test_reconfigure_changes_thresholds_but_not_the_model(model_path, tud):
    det = YoloxDetector(DetectorConfig(model_path=model_path))
    n_default = len(det.detect(tud[1]))
    det.reconfigure(det.config.replace(score_threshold=0.8, max_detections=3))
    strict = det.detect(tud[1])
    assert 0 < len(strict) <= 3 < n_default and (strict.scores >= 0.8).all()
    det.reconfigure(det.config.replace(classes=[]))  # all classes again, at 0.8
    assert det.config.classes == [] and det.config.score_threshold == 0.8
    with pytest.raises(ConfigError, match="input_size: cannot change"):
        det.reconfigure(det.config.replace(input_size=640))


@pytest.mark.data
def test_detect_sequence_writes_a_mot_detection_file(detector, tud, tmp_path):
    seq, image, _ = tud
    out = tmp_path / "det" / "yolox.txt"
    seen = []
    run = detect_sequence(seq, detector, out, max_frames=3, progress=seen.append)
    assert seen == [1, 2, 3] and run.frames == 3 and run.ms_per_frame > 0
    rows = read_mot(out)
    assert len(rows) == run.detections and set(rows.frames.tolist()) == {1, 2, 3}
    assert (rows.ids == -1).all()
    first = detector.detect(image)
    np.testing.assert_allclose(tlwh_to_xyxy(rows.boxes_tlwh[rows.frames == 1]), first.boxes_xyxy, atol=0.01)
    np.testing.assert_allclose(rows.scores[rows.frames == 1], first.scores, atol=1e-4)


@pytest.mark.data
def test_detect_sequence_without_images_is_a_clear_error(detector, tmp_path):
    (tmp_path / "img1").mkdir()
    with pytest.raises(MotFormatError, match="no frame images"):
        detect_sequence(tmp_path, detector, tmp_path / "det.txt")


# --- decoding and NMS on a synthetic network output ------------------------------------------------

def _raw_output(n_classes=80):
    cells, _ = anchor_grid(416)
    raw = np.zeros((1, len(cells), 5 + n_classes), dtype=np.float32)
    return raw, cells


def _anchor(cells, stride, x, y):
    offset = {8: 0, 16: 52 * 52, 32: 52 * 52 + 26 * 26}[stride]
    index = offset + y * (416 // stride) + x
    assert tuple(cells[index]) == (x, y)
    return index


@pytest.mark.data
def test_decodes_cell_offsets_and_log_sizes(detector):
    raw, cells = _raw_output()
    a = _anchor(cells, 16, 10, 5)
    raw[0, a, :5] = [0.5, 0.25, np.log(4.0), np.log(8.0), 0.9]
    raw[0, a, 5] = 0.8  # person
    det = detector.postprocess(raw, (416, 416))  # a square 416 image: letterbox is the identity
    cx, cy, w, h = (10 + 0.5) * 16, (5 + 0.25) * 16, 4 * 16, 8 * 16
    np.testing.assert_allclose(det.boxes_xyxy, [[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]], rtol=1e-5)
    np.testing.assert_allclose(det.scores, [0.72], rtol=1e-5)
    # the same anchor on a 832x624 image: boxes scale back by 2 (the resize is 416x312)
    det2 = detector.postprocess(raw, (624, 832))
    np.testing.assert_allclose(det2.boxes_xyxy, det.boxes_xyxy * 2, rtol=1e-5)


@pytest.mark.data
def test_nms_is_per_class_and_score_is_objectness_times_class(model_path):
    det = YoloxDetector(DetectorConfig(model_path=model_path, classes=[0, 2], score_threshold=0.3))
    raw, cells = _raw_output()
    a, b, c = _anchor(cells, 32, 3, 3), _anchor(cells, 32, 4, 3), _anchor(cells, 32, 6, 6)
    for k, (dx, obj, person, car) in zip((a, b, c), [(0.5, 0.9, 0.9, 0.0), (-0.4, 0.9, 0.8, 0.0),
                                                     (0.5, 0.9, 0.0, 0.7)], strict=True):
        raw[0, k, :5] = [dx, 0.5, np.log(3.0), np.log(3.0), obj]
        raw[0, k, 5], raw[0, k, 7] = person, car
    raw[0, c, 5 + 1] = 0.99  # bicycle: best class overall, but not in `classes`
    out = det.postprocess(raw, (416, 416))
    # a and b are the same person (IoU ~0.8): b is suppressed; c is a car and survives
    assert out.classes.tolist() == [0, 2]
    np.testing.assert_allclose(out.scores, [0.81, 0.63], rtol=1e-5)
    # a car at b's place is another class: class-wise NMS keeps it
    raw[0, b, 5], raw[0, b, 7] = 0.0, 0.8
    assert sorted(det.postprocess(raw, (416, 416)).classes.tolist()) == [0, 2, 2]


@pytest.mark.data
def test_nothing_above_threshold_gives_empty_detections(detector):
    raw, _ = _raw_output()
    out = detector.postprocess(raw, (480, 640))
    assert len(out) == 0 and out.boxes_xyxy.shape == (0, 4) and out.classes.dtype == np.int64
    assert len(Detections.empty()) == 0


# --- letterbox geometry ----------------------------------------------------------------------------

@pytest.mark.parametrize("hw", [(300, 500), (500, 300), (1080, 1920), (416, 416), (100, 90)])
def test_letterbox_round_trip_maps_a_drawn_box_back(hw):
    h, w = hw
    image = np.zeros((h, w, 3), np.uint8)
    box = np.array([0.2 * w, 0.3 * h, 0.7 * w, 0.9 * h]).round()
    x1, y1, x2, y2 = box.astype(int)
    image[y1:y2, x1:x2] = 255
    boxed = letterbox(image, 416)
    rh, rw = letterbox_scale((h, w), 416)
    assert boxed.shape == (416, 416, 3) and max(rh, rw) == 416
    assert (boxed[rh:] == PAD_VALUE).all() and (boxed[:, rw:] == PAD_VALUE).all()  # top-left placement
    ys, xs = np.nonzero(boxed[:, :, 0] > 127)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=np.float64)
    back = unletterbox_boxes(found, (h, w), 416)[0]
    tolerance = 1.5 * max(w / rw, h / rh)  # one resized pixel, in original pixels
    np.testing.assert_allclose(back, box, atol=tolerance)


def test_unletterbox_clips_to_the_image():
    back = unletterbox_boxes(np.array([[-10.0, -5.0, 500.0, 400.0]]), (480, 640), 416)
    np.testing.assert_allclose(back, [[0, 0, 640, 480]])


def test_anchor_grid_matches_the_model_output_layout():
    cells, strides = anchor_grid(416)
    assert cells.shape == (3549, 2) and strides.shape == (3549, 1)
    assert tuple(cells[1]) == (1, 0) and tuple(cells[52]) == (0, 1)  # row-major, x fastest
    assert strides[0, 0] == 8 and strides[52 * 52, 0] == 16 and strides[-1, 0] == 32


# --- errors ----------------------------------------------------------------------------------------

def test_model_path_must_be_set():
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    with pytest.raises(ModelLoadError, match="model_path is not set"):
        YoloxDetector(DetectorConfig())


def test_missing_model_file(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    with pytest.raises(ModelLoadError, match="file not found"):
        YoloxDetector(DetectorConfig(model_path=str(tmp_path / "nope.onnx")))


def test_corrupt_model_file(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x08\x07not an onnx model\xff\x00\x13")
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        YoloxDetector(DetectorConfig(model_path=str(bad)))
    assert issubclass(ModelLoadError, ConfigError)  # the CLI reports it as a one-line user error


@pytest.mark.data
def test_input_size_must_match_the_model(model_path):
    with pytest.raises(ModelLoadError, match=r"input shape .* does not match"):
        YoloxDetector(DetectorConfig(model_path=model_path, input_size=640))
    reid = require_shared("models", "osnet_x0_25_msmt17.onnx")  # a valid ONNX model, but not YOLOX
    with pytest.raises(ModelLoadError, match=r"input shape \['batch', 3, 256, 128\] does not match"):
        YoloxDetector(DetectorConfig(model_path=str(reid)))


@pytest.mark.parametrize(("image", "message"), [
    (np.zeros((48, 64, 3), np.float32), "uint8"),
    (np.zeros((48, 64, 4), np.uint8), r"shape \(H, W, 3\)"),
    (np.zeros((0, 64, 3), np.uint8), "empty"),
    (np.zeros((2, 48, 64, 3), np.uint8), r"shape \(H, W, 3\)"),
    ([[1, 2], [3, 4]], "numpy array"),
])
@pytest.mark.data
def test_bad_images_are_clear_errors(detector, image, message):
    with pytest.raises(ValueError, match=message):
        detector.detect(image)


@pytest.mark.parametrize("changes", [
    {"classes": [80]}, {"classes": [-1]}, {"classes": ["person"]}, {"classes": [0, 0]},
    {"input_size": 400}, {"score_threshold": 1.5}, {"nms_iou": -0.1}, {"max_detections": 0},
    {"num_threads": -1},
])
def test_config_rejects_invalid_values(changes):
    with pytest.raises(ConfigError):
        DetectorConfig(**changes)


def test_config_defaults_and_import_is_light():
    cfg = DetectorConfig()
    assert cfg.model_path == "" and cfg.input_size == 416 and cfg.classes == [0]
    assert cfg.score_threshold == 0.3 and not cfg.decoded_output
    import subprocess
    import sys
    code = ("import sys, ros2_tracker.detection as d; d.DetectorConfig(); "
            "sys.exit(int('onnxruntime' in sys.modules or 'cv2' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
