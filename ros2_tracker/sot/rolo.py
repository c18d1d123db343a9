"""ROLO-style recurrent single-target tracking (Ning et al., ISCAS 2017): an LSTM over detections.

Each frame the target's detection (the one overlapping the last output box most, IoU >=
``match_iou``, else the nearest within ``match_distance`` box sizes; none when the detector flickers)
is described relative to the last output box ``p`` as ``r = (dx/w, dy/h, log(w_d/w), log(h_d/h))``,
with a presence flag and the appearance of its crop (frozen ImageNet MobileNetV2 ``features[:14]``,
globally pooled, 96 values) as its cosine similarity to the start box's (a scalar: with a few dozen
training tracks, raw features let the LSTM memorise identities instead of motion). :class:`RoloNet`
is an LSTM cell over ``[flag, r, last offsets, similarity]`` (``last offsets``: its own previous
output, the motion so far) whose output
layer predicts a correction ``c``; the new box is ``p`` moved by ``flag * r + c`` (same
parametrisation). The output layer starts at zero, so an untrained model is "take the detection,
else hold the last box"; training teaches it to smooth jittered detections, to coast through missing
ones with the motion it has seen, and to discount a neighbour's box. ROLO regresses the location from
YOLO features + box directly; the residual form here keeps the small model stable on little data.

:class:`RoloTracker` is the :class:`~ros2_tracker.sot.tracker_base.SingleTargetTracker` backend: it
owns a detector (any object with ``detect(image_bgr) -> Detections``; by default a
:class:`~ros2_tracker.detection.yolox.YoloxDetector` on ``detector_model_path``), so it is meant for
scenes where a detector sees the target but flickers. Confidence: with a matched detection, the IoU
between the output box and that detection (agreement of the two); without one, the last confidence
times ``missing_decay`` per frame.

This module imports torch at import time (the network class needs it): import it where torch is wanted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.sot.pairs import check_box
from ros2_tracker.sot.tracker_base import SotResult

__all__ = ["ReplayDetector", "RoloConfig", "RoloModelConfig", "RoloNet", "RoloTracker", "appearance_features",
           "cosine_to_start", "decode_boxes", "encode_boxes", "load_rolo", "rolo_backend", "run_rolo"]

_REL_LIMIT = 3.0  # relative offsets are clipped to +-3 box sizes / log-scale units


@dataclass(frozen=True)
class RoloModelConfig(ConfigBase):
    """Architecture of :class:`RoloNet` (stored in every checkpoint)."""

    hidden: int = param(64, "LSTM hidden size", low=4, high=2048)
    appearance: bool = param(True, "Feed the cosine similarity of the detection's crop features to the "
                             "start box's (false: boxes only)")
    appearance_in: int = param(96, "Appearance feature size (MobileNetV2 features[:14] channels)", low=1,
                               high=4096)
    crop_size: int = param(64, "Side of the detection crop fed to the trunk", low=16, high=512, unit="px")


def encode_boxes(boxes_xyxy: np.ndarray | torch.Tensor, ref_xyxy: np.ndarray | torch.Tensor):
    """``(N, 4)`` offsets ``(dx/w, dy/h, log(w/w_r), log(h/h_r))`` of boxes from reference boxes."""
    wh = ref_xyxy[:, 2:] - ref_xyxy[:, :2]
    c = (ref_xyxy[:, :2] + ref_xyxy[:, 2:]) / 2
    bwh = boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]
    bc = (boxes_xyxy[:, :2] + boxes_xyxy[:, 2:]) / 2
    if isinstance(boxes_xyxy, torch.Tensor):
        return torch.cat([(bc - c) / wh, torch.log(bwh / wh)], 1)
    return np.concatenate([(bc - c) / wh, np.log(bwh / wh)], 1)


def decode_boxes(offsets, ref_xyxy):
    """Inverse of :func:`encode_boxes`: reference boxes moved by ``(N, 4)`` offsets."""
    if isinstance(offsets, torch.Tensor):
        wh = ref_xyxy[:, 2:] - ref_xyxy[:, :2]
        c = (ref_xyxy[:, :2] + ref_xyxy[:, 2:]) / 2 + offsets[:, :2] * wh
        half = wh * torch.exp(offsets[:, 2:].clamp(-_REL_LIMIT, _REL_LIMIT)) / 2
        return torch.cat([c - half, c + half], 1)
    wh = ref_xyxy[:, 2:] - ref_xyxy[:, :2]
    c = (ref_xyxy[:, :2] + ref_xyxy[:, 2:]) / 2 + offsets[:, :2] * wh
    half = wh * np.exp(np.clip(offsets[:, 2:], -_REL_LIMIT, _REL_LIMIT)) / 2
    return np.concatenate([c - half, c + half], 1)


class RoloNet(nn.Module):
    """LSTM over ``[flag, offsets of the detection, appearance]``; see the module docstring."""

    def __init__(self, config: RoloModelConfig):
        super().__init__()
        self.config = config
        self.lstm = nn.LSTMCell(9 + int(config.appearance), config.hidden)
        self.out = nn.Linear(config.hidden, 4)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def step(self, flag: torch.Tensor, rel: torch.Tensor, similarity: torch.Tensor, last: torch.Tensor,
             state: tuple[torch.Tensor, torch.Tensor] | None):
        """One frame.

        Args:
            flag: ``(B, 1)`` 1 where a detection is present, else 0.
            rel: ``(B, 4)`` its offsets from the last output box (zeros where absent).
            similarity: ``(B, 1)`` cosine similarity of its crop features to the start box's (0 where absent).
            last: ``(B, 4)`` the previous step's output offsets (the motion so far; zeros at the start).
            state: LSTM ``(h, c)`` or None at the start.

        Returns:
            ``(offsets (B, 4) of the new box from the last one, new state)``.
        """
        rel = rel.clamp(-_REL_LIMIT, _REL_LIMIT) * flag
        parts = [flag, rel, last.clamp(-_REL_LIMIT, _REL_LIMIT)]
        if self.config.appearance:
            parts.append(similarity * flag)
        h, c = self.lstm(torch.cat(parts, 1), state)
        return rel + self.out(h), (h, c)

    def forward(self, dets: torch.Tensor, appearance: torch.Tensor, init_box: torch.Tensor) -> torch.Tensor:
        """Unroll over a window.

        Args:
            dets: ``(B, T, 4)`` detections [px], NaN rows where missing (frame 0: the start box).
            appearance: ``(B, T, appearance_in)`` their crop features.
            init_box: ``(B, 4)`` start boxes.

        Returns:
            ``(B, T, 4)`` output boxes (frame 0: the start box).
        """
        box, state, out = init_box, None, [init_box]
        delta = torch.zeros_like(init_box)
        similarity = cosine_to_start(appearance)
        for t in range(dets.shape[1]):
            present = torch.isfinite(dets[:, t]).all(1, keepdim=True)
            det = torch.where(present, dets[:, t], box)
            rel = encode_boxes(det, box)
            last = delta if t > 1 else torch.zeros_like(delta)
            delta, state = self.step(present.float(), rel, similarity[:, t], last, state)
            if t:
                box = decode_boxes(delta, box)
                out.append(box)
        return torch.stack(out, 1)


def cosine_to_start(appearance: torch.Tensor) -> torch.Tensor:
    """``(B, T, 1)`` cosine similarity of each frame's ``(B, T, C)`` features to frame 0's (0: zero rows)."""
    unit = torch.nn.functional.normalize(appearance, dim=2)
    return (unit * unit[:, :1]).sum(2, keepdim=True)


def run_rolo(net: RoloNet, dets: np.ndarray, appearance: np.ndarray, init_box: np.ndarray) -> np.ndarray:
    """Run a trained net over one sequence: ``(T, 4)`` detections (NaN = missing) -> ``(T, 4)`` boxes."""
    with torch.no_grad():
        out = net(torch.from_numpy(dets[None]).float(), torch.from_numpy(appearance[None]).float(),
                  torch.from_numpy(np.asarray(init_box, np.float64)[None]).float())
    return out[0].numpy().astype(np.float64)


def appearance_features(trunk, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray, crop_size: int) -> np.ndarray:
    """``(N, C)`` float32 globally pooled trunk features of the boxes' crops (zeros for unusable boxes)."""
    from ros2_tracker.sot.goturn import to_input
    from ros2_tracker.sot.pairs import crop_windows

    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    ok = np.isfinite(boxes).all(1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    with torch.no_grad():
        channels = trunk(torch.zeros(1, 3, 32, 32)).shape[1]
        out = np.zeros((len(boxes), channels), np.float32)
        if ok.any():
            crops = crop_windows(frame_bgr, boxes[ok], crop_size)
            out[ok] = trunk(torch.from_numpy(to_input(crops))).mean((2, 3)).numpy()
    return out


def load_rolo(path: str | Path) -> tuple[RoloNet, dict]:
    """Rebuild the network of a ``train-sot --model rolo`` checkpoint (``weights_only=True``).

    Raises:
        SotCheckpointError: unusable file, another kind, or tensors that do not fit.
    """
    from ros2_tracker.sot.sot_export import SotCheckpointError, load_sot_checkpoint

    payload = load_sot_checkpoint(path, "rolo")
    try:
        net = RoloNet(RoloModelConfig.from_dict(payload["model"]))
        net.load_state_dict(payload["state_dict"], strict=True)
    except (ConfigError, RuntimeError, TypeError) as exc:
        raise SotCheckpointError(f"{path}: does not fit the ROLO-style network: "
                                 f"{str(exc).splitlines()[0]}") from None
    return net.eval(), payload


class ReplayDetector:
    """A "detector" replaying recorded detections (a det file, simulated flicker) one frame per call.

    Args:
        boxes_per_frame: one ``(N, 4)`` xyxy array per frame, in call order.
        scores_per_frame: matching ``(N,)`` scores (default 1).
    """

    def __init__(self, boxes_per_frame: Sequence[np.ndarray],
                 scores_per_frame: Sequence[np.ndarray] | None = None):
        self._boxes = [np.asarray(b, np.float32).reshape(-1, 4) for b in boxes_per_frame]
        self._scores = ([np.asarray(s, np.float32) for s in scores_per_frame] if scores_per_frame is not None
                        else [np.ones(len(b), np.float32) for b in self._boxes])
        self._next = 0

    def detect(self, image_bgr: np.ndarray):
        """The next frame's detections (``Detections``); empty after the last one."""
        from ros2_tracker.detection.config import Detections

        if self._next >= len(self._boxes):
            return Detections.empty()
        b, s = self._boxes[self._next], self._scores[self._next]
        self._next += 1
        return Detections(b, s, np.zeros(len(b), np.int64))


@dataclass(frozen=True)
class RoloConfig(ConfigBase):
    """Parameters of :class:`RoloTracker`."""

    checkpoint_path: str = param("", "ROLO-style checkpoint written by `ros2-tracker train-sot --model rolo`",
                                 read_only=True)
    detector_model_path: str = param("", "YOLOX ONNX model used when no detector is passed in",
                                     read_only=True)
    detector_score_threshold: float = param(0.3, "Minimum detection score", low=0.0, high=1.0)
    match_iou: float = param(0.3, "A detection is the target's when it overlaps the last box this much",
                             low=0.0, high=1.0)
    match_distance: float = param(0.75, "... or, overlapping less, when its centre is this close to the last "
                                  "box's (in box widths/heights): picks the target up again after coasting",
                                  low=0.0, high=10.0)
    missing_decay: float = param(0.7, "Confidence factor per frame without a matched detection", low=0.0,
                                 high=1.0)
    num_threads: int = param(1, "CPU threads (torch, ONNX Runtime)", low=0, high=256, read_only=True)

    def check(self) -> None:
        """The checkpoint must be named."""
        if not self.checkpoint_path:
            raise ConfigError("checkpoint_path: not set; train one with "
                              "`ros2-tracker train-sot --model rolo`")


class RoloTracker:
    """ROLO-style :class:`~ros2_tracker.sot.tracker_base.SingleTargetTracker` (see the module docstring).

    Args:
        config: parameters.
        detector: object with ``detect(image_bgr) -> Detections``; None: a YOLOX detector on
            ``config.detector_model_path``.

    Raises:
        SotCheckpointError: unusable checkpoint.
        ConfigError: no detector given and ``detector_model_path`` unusable.
    """

    def __init__(self, config: RoloConfig, detector=None):
        from ros2_tracker.sot.goturn import build_trunk

        self.config = config
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self._net, _ = load_rolo(config.checkpoint_path)
        if detector is None:
            from ros2_tracker.detection import DetectorConfig, YoloxDetector

            if not config.detector_model_path:
                raise ConfigError("detector_model_path: not set and no detector given (the ROLO-style "
                                  "backend needs detections, e.g. yolox_nano.onnx)")
            detector = YoloxDetector(DetectorConfig(model_path=config.detector_model_path,
                                                    score_threshold=config.detector_score_threshold,
                                                    num_threads=config.num_threads))
        self._detector = detector
        self._trunk = build_trunk(14)
        self._hw: tuple[int, int] | None = None
        self._box = np.zeros(4)
        self._state = None
        self._last = np.zeros(4)
        self._template = np.zeros(96, np.float32)
        self._confidence = 1.0

    @property
    def name(self) -> str:
        """``"rolo:torch"``."""
        return "rolo:torch"

    def init(self, frame_bgr: np.ndarray, box_xyxy: np.ndarray) -> None:
        """Start on ``box_xyxy`` (4,) [px]: the LSTM sees it as the first detection.

        Raises:
            ValueError: bad frame, or a box with NaN, zero size or outside the image.
        """
        from ros2_tracker.sot.goturn import check_frame

        frame = check_frame(frame_bgr)
        self._box = check_box(box_xyxy, frame.shape[:2])
        self._hw = frame.shape[:2]
        self._state = None
        self._last = np.zeros(4)
        self._confidence = 1.0
        crop = self._net.config.crop_size
        self._template = appearance_features(self._trunk, frame, self._box[None], crop)[0]
        self._template /= max(float(np.linalg.norm(self._template)), 1e-12)
        self._step(frame, self._box)
        self._last = np.zeros(4)  # the start step's output is no motion

    def update(self, frame_bgr: np.ndarray) -> SotResult:
        """Detect, match the target's detection, advance the LSTM; the box and confidence.

        Raises:
            RuntimeError: called before ``init``.
            ValueError: not an ``(H, W, 3)`` uint8 frame of the size given to ``init``.
        """
        from ros2_tracker.core.costs import iou_matrix
        from ros2_tracker.sot.goturn import check_frame

        if self._hw is None:
            raise RuntimeError("RoloTracker.update called before init")
        frame = check_frame(frame_bgr, self._hw)
        det = self._match(self._detector.detect(frame).boxes_xyxy)
        delta = self._step(frame, det)
        box = decode_boxes(delta[None], self._box[None])[0]
        if np.isfinite(box).all() and (box[2:] - box[:2] >= 1.0).all():
            self._box = box
        if det is not None:
            self._confidence = float(iou_matrix(self._box[None], det[None])[0, 0])
        else:
            self._confidence *= self.config.missing_decay
        return SotResult(self._box.copy(), float(np.clip(self._confidence, 0.0, 1.0)))

    def _match(self, boxes: np.ndarray) -> np.ndarray | None:
        from ros2_tracker.core.costs import iou_matrix

        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if not len(boxes):
            return None
        iou = iou_matrix(boxes, self._box[None])[:, 0]
        k = int(np.argmax(iou))
        if iou[k] >= self.config.match_iou:
            return boxes[k]
        offsets = np.abs(encode_boxes(boxes, self._box[None])[:, :2]).max(1)
        k = int(np.argmin(offsets))
        return boxes[k] if offsets[k] <= self.config.match_distance else None

    def _step(self, frame: np.ndarray, det: np.ndarray | None) -> np.ndarray:
        present = det is not None
        rel = encode_boxes(det[None], self._box[None]) if present else np.zeros((1, 4))
        similarity = 0.0
        if present and self._net.config.appearance:
            feat = appearance_features(self._trunk, frame, det[None], self._net.config.crop_size)[0]
            similarity = float(feat @ self._template) / max(float(np.linalg.norm(feat)), 1e-12)
        with torch.no_grad():
            delta, self._state = self._net.step(torch.tensor([[float(present)]]),
                                                torch.from_numpy(rel).float(), torch.tensor([[similarity]]),
                                                torch.from_numpy(self._last[None]).float(), self._state)
        self._last = delta[0].numpy().astype(np.float64)
        return self._last


def rolo_backend(model_path: str, num_threads: int = 1) -> RoloTracker:
    """The factory's constructor: ``model_path`` is ``CHECKPOINT,DETECTOR_ONNX`` (the YOLOX model it needs).

    Raises:
        ConfigError: no detector named, or a model cannot be loaded (the message names ``model_path``).
    """
    from ros2_tracker.sot.sot_export import SotCheckpointError

    checkpoint, _, detector = str(model_path).partition(",")
    if not detector.strip():
        raise ConfigError(f"model_path: {model_path!r}: the rolo backend needs 'CHECKPOINT,DETECTOR_ONNX', "
                          "e.g. runs/sot/rolo/checkpoint.pt,../shared/models/yolox_nano.onnx")
    try:
        return RoloTracker(RoloConfig(checkpoint_path=checkpoint.strip(),
                                      detector_model_path=detector.strip(), num_threads=num_threads))
    except (ConfigError, SotCheckpointError) as exc:
        raise ConfigError(f"model_path: {exc}") from None
