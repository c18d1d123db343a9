"""YOLOX object detector (ONNX Runtime, CPU): image in, scored boxes in image pixels out.

Model contract (YOLOX as exported by its ``tools/export_onnx.py``; checked on yolox_nano.onnx):

- input ``1x3xSxS`` float32, **BGR**, values 0..255 (no mean/std normalisation), the image letterboxed:
  resized keeping its aspect ratio so that it fits SxS, placed at the top-left corner, the rest filled
  with 114;
- output ``1xAx(5+C)``: per anchor ``cx, cy, w, h, objectness, C class probabilities`` (objectness and
  class probabilities already passed through a sigmoid). The anchors are the cells of three grids,
  strides 8, 16 and 32, row-major, so ``A = sum((S/s)^2)`` (3549 for S = 416). Box values are **not**
  decoded in the graph unless the model was exported with ``--decode_in_inference``: ``cx, cy`` are
  offsets within the cell and ``w, h`` log-sizes, decoded as ``(offset + cell) * stride`` and
  ``exp(log_size) * stride``. yolox_nano.onnx is such an undecoded export: on a TUD-Campus frame its
  ``cx, cy`` lie in [-2.2, 3.5] and ``w, h`` in [-1.1, 3.0], not in pixels; set
  ``DetectorConfig.decoded_output`` for an export that decodes.

The score of a detection is objectness x class probability; each anchor yields at most one
detection, of its best class among ``DetectorConfig.classes``. Non-maximum suppression is per class.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ros2_tracker.backends.onnxruntime import open_session
from ros2_tracker.core.boxes import cxcywh_to_xyxy, xyxy_to_tlwh
from ros2_tracker.core.config import ConfigError
from ros2_tracker.detection.config import Detections, DetectorConfig
from ros2_tracker.io.mot import MotFormatError, write_results
from ros2_tracker.io.sequence import read_sequence_info
from ros2_tracker.io.video import read_image

__all__ = [
    "PAD_VALUE",
    "STRIDES",
    "ModelLoadError",
    "SequenceDetectionRun",
    "YoloxDetector",
    "as_bgr_image",
    "detect_sequence",
    "letterbox",
    "letterbox_scale",
    "unletterbox_boxes",
]

STRIDES = (8, 16, 32)
"""Strides of the three YOLOX output grids [px of the network input]."""

PAD_VALUE = 114
"""Grey level of the letterbox padding (as in YOLOX's training and demo preprocessing)."""

_MAX_LOG_SIZE = 12.0  # exp(12) * 32 px is far beyond any image: clamp to avoid overflow warnings


class ModelLoadError(ConfigError):
    """``model_path`` does not name a usable model: missing, unreadable, not ONNX, or wrong I/O shapes."""


def as_bgr_image(image: np.ndarray) -> np.ndarray:
    """Validate an image and return it as a C-contiguous ``(H, W, 3)`` uint8 BGR array.

    Args:
        image: ``(H, W, 3)`` uint8 BGR, or a ``(H, W)`` / ``(H, W, 1)`` uint8 grey image (replicated
            to three channels).

    Raises:
        ValueError: not a numpy array, not uint8, empty, or another shape; the message says which.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array (H, W, 3) uint8 BGR, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (0..255), got dtype {image.dtype}; convert or scale it first")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        if image.size == 0:
            raise ValueError(f"image is empty: shape {image.shape}")
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3) BGR or (H, W) grey, got {image.shape}")
    if image.size == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    return np.ascontiguousarray(image)


def letterbox_scale(image_hw: tuple[int, int], input_size: int) -> tuple[int, int]:
    """Size ``(h, w)`` of the image once resized into the ``input_size`` square, aspect kept."""
    h, w = image_hw
    r = min(input_size / h, input_size / w)
    return (min(input_size, max(1, round(h * r))), min(input_size, max(1, round(w * r))))


def letterbox(image_bgr: np.ndarray, input_size: int) -> np.ndarray:
    """Resize (aspect kept, bilinear) into an ``input_size`` square, top-left, padded with 114.

    Args:
        image_bgr: ``(H, W, 3)`` uint8.
        input_size: side S of the square [px].

    Returns:
        ``(S, S, 3)`` uint8; the image occupies ``[:h, :w]`` with ``(h, w) = letterbox_scale(...)``.
    """
    h, w = letterbox_scale(image_bgr.shape[:2], input_size)
    resized = image_bgr if (h, w) == image_bgr.shape[:2] else cv2.resize(
        image_bgr, (w, h), interpolation=cv2.INTER_LINEAR)
    out = np.full((input_size, input_size, 3), PAD_VALUE, dtype=np.uint8)
    out[:h, :w] = resized
    return out


def unletterbox_boxes(boxes_xyxy: np.ndarray, image_hw: tuple[int, int], input_size: int) -> np.ndarray:
    """Map ``(N, 4)`` xyxy boxes from letterboxed-input pixels to original-image pixels, clipped.

    The x and y scales are those of the actual resize (``w / W`` and ``h / H``), which differ from
    the nominal ratio by the rounding of the resized size.
    """
    h, w = letterbox_scale(image_hw, input_size)
    img_h, img_w = image_hw
    scale = np.array([img_w / w, img_h / h, img_w / w, img_h / h], dtype=np.float64)
    out = np.asarray(boxes_xyxy, dtype=np.float64) * scale
    np.clip(out[:, 0::2], 0.0, img_w, out=out[:, 0::2])
    np.clip(out[:, 1::2], 0.0, img_h, out=out[:, 1::2])
    return out


def anchor_grid(input_size: int, strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Cell indices ``(A, 2)`` (x, y) and strides ``(A, 1)`` of YOLOX's anchors, in output order."""
    cells, cell_strides = [], []
    for s in strides:
        n = input_size // s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        cell_strides.append(np.full((n * n, 1), s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(cell_strides).astype(np.float32)


class YoloxDetector:
    """YOLOX detector running an ONNX model with ONNX Runtime on the CPU.

    The constructor loads and checks the model; :meth:`detect` is then safe to call from several
    threads (ONNX Runtime sessions are thread-safe and the detector keeps no per-call state).

    Args:
        config: detector parameters; ``config.model_path`` must name the ONNX file.

    Raises:
        ModelLoadError: the model path is empty or missing, the file is not a loadable ONNX model,
            or its input/output shapes are not YOLOX's for ``config.input_size``.
    """

    def __init__(self, config: DetectorConfig) -> None:
        self._session, self._input_name, self.num_classes = _load_session(config)
        self._cells, self._strides = anchor_grid(config.input_size)
        # (config, class ids) replaced as one tuple, so a concurrent detect() never mixes two configs
        self._params = (config, self._class_ids(config))

    @property
    def config(self) -> DetectorConfig:
        """The current parameters."""
        return self._params[0]

    def reconfigure(self, config: DetectorConfig) -> None:
        """Apply new filtering parameters, e.g. after a ROS parameter change.

        ``score_threshold``, ``nms_iou``, ``classes`` and ``max_detections`` may change; the model
        fields (``model_path``, ``input_size``, ``decoded_output``, ``num_threads``) need a new detector.

        Raises:
            ConfigError: a model field changed, or a class id is not one of the model's classes.
        """
        self._params = (config, self.check_config(config))

    def check_config(self, config: DetectorConfig) -> np.ndarray:
        """The class ids ``config`` keeps, if this detector can apply it (:meth:`reconfigure`); changes
        nothing. A node's parameter validator calls it, so a change it cannot apply is refused.

        Raises:
            ConfigError: a model field changed, or a class id is not one of the model's classes.
        """
        fixed = [f for f in ("model_path", "input_size", "decoded_output", "num_threads")
                 if getattr(config, f) != getattr(self.config, f)]
        if fixed:
            raise ConfigError(f"{', '.join(fixed)}: cannot change on a loaded model; create a new detector")
        return self._class_ids(config)

    def _class_ids(self, config: DetectorConfig) -> np.ndarray:
        bad = [c for c in config.classes if c >= self.num_classes]
        if bad:
            raise ModelLoadError(f"classes: {bad} not in the model's {self.num_classes} classes")
        return np.asarray(config.classes or range(self.num_classes), dtype=np.int64)

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """Detect objects in one image.

        Args:
            image_bgr: ``(H, W, 3)`` uint8 BGR, or ``(H, W)`` uint8 grey.

        Returns:
            :class:`Detections` with boxes in pixels of ``image_bgr`` (xyxy, clipped to the image),
            scores ``>= score_threshold``, classes in ``config.classes``, sorted by decreasing score,
            at most ``max_detections``.

        Raises:
            ValueError: the image is not a uint8 grey or 3-channel array, or is empty.
        """
        image = as_bgr_image(image_bgr)
        blob = letterbox(image, self.config.input_size).transpose(2, 0, 1)[None].astype(np.float32)
        raw = self._session.run(None, {self._input_name: blob})[0]
        return self.postprocess(raw, image.shape[:2])

    def postprocess(self, raw: np.ndarray, image_hw: tuple[int, int]) -> Detections:
        """Turn the network output ``(1, A, 5 + C)`` into :class:`Detections` for an ``image_hw`` image."""
        cfg, class_ids = self._params
        out = raw.reshape(raw.shape[-2], raw.shape[-1])
        if out.shape[0] != len(self._cells):
            raise ModelLoadError(f"{cfg.model_path}: model output has {out.shape[0]} anchors, expected "
                                 f"{len(self._cells)} for input_size {cfg.input_size}")
        cls_prob = out[:, 5 + class_ids]
        best = cls_prob.argmax(axis=1)
        scores = out[:, 4] * cls_prob[np.arange(len(out)), best]
        keep = np.flatnonzero(scores >= cfg.score_threshold)
        if len(keep) == 0:
            return Detections.empty()
        boxes_cxcywh = self._decode(out[keep, :4], keep, cfg.decoded_output)
        boxes = unletterbox_boxes(cxcywh_to_xyxy(boxes_cxcywh), image_hw, cfg.input_size)
        valid = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, classes = boxes[valid], scores[keep][valid], class_ids[best[keep][valid]]
        kept = _nms_per_class(boxes, scores, classes, cfg.nms_iou, cfg.max_detections)
        return Detections(boxes[kept].astype(np.float32), scores[kept].astype(np.float32), classes[kept])

    def _decode(self, box_raw: np.ndarray, anchors: np.ndarray, decoded: bool) -> np.ndarray:
        """``(K, 4)`` network box values of the given anchors -> cx, cy, w, h in input pixels."""
        if decoded:
            return box_raw.astype(np.float64)
        stride = self._strides[anchors]
        xy = (box_raw[:, :2] + self._cells[anchors]) * stride
        wh = np.exp(np.minimum(box_raw[:, 2:4], _MAX_LOG_SIZE)) * stride
        return np.concatenate([xy, wh], axis=1).astype(np.float64)


def _nms_per_class(boxes_xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float,
                   max_keep: int) -> np.ndarray:
    """Indices kept by class-wise NMS (OpenCV), highest score first, at most ``max_keep``."""
    if len(scores) == 0:
        return np.empty(0, dtype=np.int64)
    tlwh = xyxy_to_tlwh(boxes_xyxy)
    # score_threshold -1: the caller has already filtered by score (OpenCV keeps only scores > threshold)
    idx = cv2.dnn.NMSBoxesBatched(tlwh, scores.astype(np.float32), classes.astype(np.int32), -1.0,
                                  float(iou))
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return idx[:max_keep]


def _load_session(config: DetectorConfig):  # -> (ort.InferenceSession, input name, number of classes)
    """Open the ONNX model and check that its inputs and outputs are YOLOX's."""
    session, path = open_session(config.model_path, config.num_threads,
                                 what="the YOLOX ONNX file (e.g. yolox_nano.onnx)",
                                 error=ModelLoadError)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ModelLoadError(f"model_path: {path}: expected 1 input and 1 output (YOLOX), got "
                             f"{len(inputs)} inputs and {len(outputs)} outputs")
    s = config.input_size
    _check_shape(path, "input", inputs[0].shape, [1, 3, s, s], "1x3xSxS with S = input_size")
    anchors = sum((s // st) ** 2 for st in STRIDES)
    out_shape = outputs[0].shape
    _check_shape(path, "output", out_shape[:2], [1, anchors], f"1x{anchors}x(5+classes)")
    if len(out_shape) != 3 or not isinstance(out_shape[2], int) or out_shape[2] < 6:
        raise ModelLoadError(f"model_path: {path}: output shape {out_shape} is not 1x{anchors}x(5+classes)")
    return session, inputs[0].name, out_shape[2] - 5


def _check_shape(path: Path, what: str, shape: list, expected: list[int], text: str) -> None:
    """Static dims must equal ``expected``; symbolic dims (strings, None) are accepted."""
    ok = len(shape) >= len(expected) and all(
        not isinstance(d, int) or d == e for d, e in zip(shape, expected, strict=False))
    if what == "input":
        ok = ok and len(shape) == 4
    if not ok:
        raise ModelLoadError(f"model_path: {path}: model {what} shape {shape} does not match {text} "
                             f"(expected {expected}); check input_size")


@dataclass(frozen=True)
class SequenceDetectionRun:
    """What :func:`detect_sequence` did.

    Attributes:
        path: the detection file written.
        frames: number of frames detected.
        detections: number of rows written.
        detect_seconds: wall time inside :meth:`YoloxDetector.detect` (image reading excluded) [s].
    """

    path: Path
    frames: int
    detections: int
    detect_seconds: float

    @property
    def ms_per_frame(self) -> float:
        """Mean detection time per frame [ms] (NaN when no frame was processed)."""
        return 1000.0 * self.detect_seconds / self.frames if self.frames else math.nan


def detect_sequence(seq_folder: str | Path, detector: YoloxDetector, out_path: str | Path, *,
                    max_frames: int | None = None,
                    progress: Callable[[int], None] | None = None) -> SequenceDetectionRun:
    """Detect every frame image of a MOTChallenge sequence and write a MOTChallenge ``det.txt``.

    Frames are the files ``<imDir>/<NNNNNN><imExt>`` (``img1/000001.jpg`` by default, from
    ``seqinfo.ini``) whose name is a frame number, in frame order; a sequence may hold only its first
    frames. Rows are ``frame,-1,x,y,w,h,score,-1,-1,-1`` (tlwh pixels), so class ids are not written:
    keep ``detector.config.classes`` to one class (the default, person) for a tracking benchmark.

    Args:
        seq_folder: sequence folder (with ``seqinfo.ini`` and the image folder).
        detector: the detector to run.
        out_path: detection file to write (parent folders are created). Never the sequence's own
            ``det/det.txt`` unless you mean to replace it.
        max_frames: detect at most this many frames (the first ones).
        progress: called with each frame number after it is processed.

    Raises:
        MotFormatError: no sequence folder, no frame images, or an image that cannot be read.
    """
    info = read_sequence_info(seq_folder)
    frames = sorted((int(p.stem), p) for p in info.image_dir.glob(f"*{info.image_ext}") if p.stem.isdigit())
    if not frames:
        raise MotFormatError(f"{info.image_dir}: no frame images (*{info.image_ext}) in the sequence")
    if max_frames is not None:
        frames = frames[:max_frames]
    rows_f, rows_b, rows_s = [], [], []
    seconds = 0.0
    for frame, path in frames:
        image = read_image(path)
        if image is None:
            raise MotFormatError(f"{path}: cannot read the image")
        t0 = time.perf_counter()
        det = detector.detect(image)
        seconds += time.perf_counter() - t0
        rows_f.append(np.full(len(det), frame, dtype=np.int64))
        rows_b.append(xyxy_to_tlwh(det.boxes_xyxy))
        rows_s.append(det.scores.astype(np.float64))
        if progress is not None:
            progress(frame)
    f, b, s = np.concatenate(rows_f), np.concatenate(rows_b), np.concatenate(rows_s)
    write_results(out_path, f, np.full(len(f), -1, dtype=np.int64), b, s)
    return SequenceDetectionRun(Path(out_path), len(frames), len(f), seconds)
