"""Follow one chosen target: a backend plus failure detection, re-acquisition and motion prediction.

:class:`Follower` wraps any :class:`~ros2_tracker.sot.tracker_base.SingleTargetTracker` and runs a
small state machine, one :meth:`Follower.step` per frame:

- **tracking**: the confidence -- min(backend confidence, IoU of the last cycle-consistency check)
  -- is at least ``confidence_uncertain``;
- **uncertain**: the confidence is lower, or the frame is *bad*: confidence below ``confidence_lost``
  or the last cycle-consistency check failed. The box is still the backend's;
- **lost**: ``lost_after_frames`` bad frames in a row. The backend's box is no longer trusted (a
  Siamese tracker that lost its target happily locks onto another person, with a high score): the
  published box is the constant-velocity prediction, and the follower searches for the target.

Cycle consistency (Wang, Jabri, Efros, CVPR 2019), for every backend: every ``cycle_every_frames``
frames a second instance of the backend starts on the current box and tracks *backwards* through the
last ``cycle_window_frames`` frames; the IoU between where it ends and where the target was in that
frame is the check (below ``cycle_min_iou``: failed). A tracker that followed the target comes back
to where it started; one that drifted onto background or another object does not.

Re-acquisition while lost (every ``search_every_frames`` frames), the target keeping its id:

1. *wider search*: the backend, started on the last good template (frame and box of the last frame
   that passed the cycle check), is run on the current frame shifted and scaled so that each
   candidate position around the predicted centre (a grid out to ``search_radius`` box sizes,
   growing by ``search_growth_per_s`` per second lost up to ``search_radius_max``) sits where the
   template was. The most confident candidate is accepted with backend confidence >=
   ``search_min_confidence`` (and, with an embedder, appearance similarity >= ``reid_min_similarity``).
   Without an embedder this can take a similar-looking person near the prediction: NanoTrack tells
   people apart poorly. (Verifying candidates by tracking back into the template frame was tried and
   measured worse on TUD-Campus and PETS09-S3MF1: it rejected the true target as often as impostors.)
2. *detector + appearance* (with both): every detection of the frame is embedded and compared with
   the target's embedding (taken at the start, then a moving average over confidently tracked
   frames); the most similar one at >= ``reid_min_similarity`` is accepted.

The motion model is the core's constant-velocity Kalman filter (:mod:`ros2_tracker.core.kalman`),
updated with the backend's box on good frames; its prediction gives the lost box, the velocity, the
box variance and the predicted trajectory, as for multi-object tracks.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ros2_tracker.core import kalman
from ros2_tracker.core.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh
from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.core.motion import check_trajectory_sampling
from ros2_tracker.core.track import TrackState
from ros2_tracker.sot.inputs import check_frame, check_start_box, iou_xyxy
from ros2_tracker.sot.tracker_base import SingleTargetTracker

__all__ = ["FollowResult", "FollowState", "Follower", "FollowerConfig"]


class FollowState(enum.Enum):
    """The target's state; :attr:`track_state` maps it onto the ``Track`` message's states."""

    TRACKING = "tracking"
    UNCERTAIN = "uncertain"
    LOST = "lost"

    @property
    def track_state(self) -> TrackState:
        """tracking -> CONFIRMED, uncertain -> TENTATIVE (a measured box not yet trusted), lost -> LOST."""
        return {FollowState.TRACKING: TrackState.CONFIRMED, FollowState.UNCERTAIN: TrackState.TENTATIVE,
                FollowState.LOST: TrackState.LOST}[self]


@dataclass(frozen=True)
class FollowerConfig(ConfigBase):
    """Parameters of :class:`Follower` (state machine, cycle check, re-acquisition, prediction)."""

    confidence_uncertain: float = param(0.7, "Backend confidence below this: uncertain", low=0.0, high=1.0)
    confidence_lost: float = param(0.5, "Backend confidence below this: a bad frame", low=0.0, high=1.0)
    lost_after_frames: int = param(3, "Consecutive bad frames before the target is lost", low=1, high=1000)
    cycle_window_frames: int = param(4, "Cycle-consistency check: frames tracked backwards (0 = no check)",
                                     low=0, high=100)
    cycle_every_frames: int = param(2, "Run the cycle-consistency check every this many frames", low=1,
                                    high=1000)
    cycle_min_iou: float = param(0.5, "Forward-backward IoU below this fails the check (a bad frame until "
                                 "the next check)", low=0.0, high=1.0)
    search_every_frames: int = param(2, "While lost: try to re-acquire every this many frames", low=1,
                                     high=1000)
    search_radius: float = param(1.0, "Wider search: initial radius around the predicted centre [box "
                                 "sizes]", low=0.0, high=100.0)
    search_growth_per_s: float = param(1.0, "Wider search: radius growth per second lost [box sizes/s]",
                                       low=0.0, high=100.0)
    search_radius_max: float = param(3.0, "Wider search: largest radius [box sizes]", low=0.0, high=100.0)
    search_max_candidates: int = param(9, "Wider search: most candidate positions per try (nearest "
                                       "first; 0 = no wider search)", low=0, high=400)
    search_min_confidence: float = param(0.8, "Wider search: backend confidence needed to re-acquire",
                                         low=0.0, high=1.0)
    reid_min_similarity: float = param(0.75, "With an embedder: cosine similarity to the target's "
                                       "embedding needed to re-acquire", low=-1.0, high=1.0)
    embedding_momentum: float = param(0.9, "Moving average of the target's embedding (1 = keep the "
                                      "first)", low=0.0, high=1.0)
    embed_every_frames: int = param(5, "Update the target's embedding every this many tracking frames",
                                    low=1, high=1000)
    trajectory_horizon_s: float = param(2.0, "How far ahead the predicted trajectory reaches (0 = none)",
                                        low=0.0, high=60.0, unit="s")
    trajectory_step_s: float = param(0.2, "Time between predicted trajectory points", low=0.001,
                                     high=60.0, unit="s")

    def check(self) -> None:
        """Thresholds in order, search radii in order, trajectory sampling (see
        :func:`~ros2_tracker.core.motion.check_trajectory_sampling`)."""
        if self.confidence_lost > self.confidence_uncertain:
            raise ConfigError("confidence_lost: must not exceed confidence_uncertain")
        if self.search_radius > self.search_radius_max:
            raise ConfigError("search_radius: must not exceed search_radius_max")
        check_trajectory_sampling(self.trajectory_horizon_s, self.trajectory_step_s)


class FollowResult(NamedTuple):
    """The target after one frame.

    Attributes:
        target_id: the id given at :meth:`Follower.start` (kept through re-acquisition).
        state: :class:`FollowState`.
        box_xyxy: (4,) box [px]: the backend's, or the prediction when lost.
        confidence: min(backend confidence, last cycle-check IoU) in [0, 1]; 0 when lost.
        backend_confidence: the backend's own confidence this frame (NaN when lost and not searched).
        cycle_iou: IoU of this frame's cycle check, NaN when none ran.
        velocity: (4,) d/dt of (cx, cy, w, h) [px/s].
        box_variance: (4,) variances of (cx, cy, w, h) [px^2].
        age_s: time since the start [s].
        hits: frames measured (not bad) since the start.
        time_since_update_s: time since the last good measurement [s].
        trajectory_times_s: (K,) seconds ahead of this frame.
        trajectory: (K, 2) predicted centres [px].
        trajectory_cov: (K, 3) (var_x, cov_xy, var_y) [px^2].
        event: "" or what happened: "lost", "reacquired:search", "reacquired:detector".
    """

    target_id: int
    state: FollowState
    box_xyxy: np.ndarray
    confidence: float
    backend_confidence: float
    cycle_iou: float
    velocity: np.ndarray
    box_variance: np.ndarray
    age_s: float
    hits: int
    time_since_update_s: float
    trajectory_times_s: np.ndarray
    trajectory: np.ndarray
    trajectory_cov: np.ndarray
    event: str = ""


class Follower:
    """One target at a time; see the module docstring.

    Args:
        make_tracker: builds a new backend (called twice: the follower and its checker).
        config: follower parameters.
        detector: optional object with ``detect(frame_bgr) -> Detections`` (e.g. ``YoloxDetector``).
        embedder: optional :class:`~ros2_tracker.appearance.Embedder` (re-ID); the detector stage
            needs it.
    """

    def __init__(self, make_tracker: Callable[[], SingleTargetTracker],
                 config: FollowerConfig | None = None, *, detector: Any = None, embedder: Any = None) -> None:
        self.config = config or FollowerConfig()
        self._tracker = make_tracker()
        self._checker = make_tracker()
        self._detector, self._embedder = detector, embedder
        self._noise = kalman.MotionNoise()
        self._target_id: int | None = None

    @property
    def name(self) -> str:
        """The backend's name."""
        return self._tracker.name

    @property
    def active(self) -> bool:
        """Whether a target is being followed."""
        return self._target_id is not None

    @property
    def target_id(self) -> int | None:
        """The current target's id (None when idle)."""
        return self._target_id

    # ----------------------------------------------------------------------------------------- control
    def start(self, frame_bgr: np.ndarray, box_xyxy: np.ndarray, stamp_s: float, target_id: int) -> None:
        """Start following ``box_xyxy`` (4,) [px] in ``frame_bgr`` at ``stamp_s`` [s].

        Raises:
            RuntimeError: a target is already followed (call :meth:`stop` first).
            ValueError: bad frame, or a box outside the image, of zero size or too small (nothing changes).
        """
        if self.active:
            raise RuntimeError(f"already following target {self._target_id}; stop it first")
        frame = check_frame(frame_bgr)
        box = check_start_box(box_xyxy, frame.shape[:2])
        self._tracker.init(frame, box)
        self._image_hw = frame.shape[:2]
        self._history: deque[tuple[np.ndarray, np.ndarray]] = deque(
            [(frame, box)], maxlen=self.config.cycle_window_frames + 1)
        self._template = (frame, box)
        self._mean, self._cov = kalman.initiate(xyxy_to_cxcywh(box[None]), self._noise)
        self._start_s = self._stamp = self._updated_s = self._lost_s = float(stamp_s)
        self._frames = self._hits = self._bad = self._lost_frames = 0
        self._cycle = 1.0
        self._state = FollowState.TRACKING
        self._embedding = self._embed(frame, box)
        self._target_id = int(target_id)

    def stop(self) -> None:
        """Stop following (idempotent); frames kept for the checks are released."""
        self._target_id = None
        self._history = deque()
        self._template = None

    # -------------------------------------------------------------------------------------------- step
    def step(self, frame_bgr: np.ndarray, stamp_s: float) -> FollowResult:
        """Follow the target into the next frame at ``stamp_s`` [s].

        Raises:
            RuntimeError: no target (call :meth:`start`).
            ValueError: bad frame or one of another size than the start frame (the state is unchanged).
        """
        if not self.active:
            raise RuntimeError("no target: call start() first")
        frame = check_frame(frame_bgr, self._image_hw)
        dt = max(0.0, float(stamp_s) - self._stamp)  # a stamp going back (looped bag) counts as no time
        self._stamp = float(stamp_s)
        self._mean, self._cov = kalman.predict(self._mean, self._cov, dt, self._noise)
        self._frames += 1
        if self._state is FollowState.LOST:
            return self._reacquire(frame)
        return self._follow(frame)

    def _follow(self, frame: np.ndarray) -> FollowResult:
        """A frame while not lost: backend update, cycle check, state, motion update."""
        cfg = self.config
        res = self._tracker.update(frame)
        box, conf = np.asarray(res.box_xyxy, dtype=np.float64), float(res.confidence)
        self._history.append((frame, box))
        cycle = math.nan
        if cfg.cycle_window_frames and self._frames % cfg.cycle_every_frames == 0 \
                and len(self._history) == self._history.maxlen:
            cycle = self._cycle_check()
            self._cycle = cycle
            if cycle >= cfg.cycle_min_iou:
                self._template = (frame, box)
        bad = conf < cfg.confidence_lost or self._cycle < cfg.cycle_min_iou or not _usable(box)
        self._bad = self._bad + 1 if bad else 0
        if self._bad >= cfg.lost_after_frames:
            self._state, self._lost_s, self._lost_frames = FollowState.LOST, self._stamp, 0
            return self._result(self._predicted_box(), 0.0, conf, cycle, "lost")
        combined = min(conf, self._cycle)
        uncertain = bad or combined < cfg.confidence_uncertain
        self._state = FollowState.UNCERTAIN if uncertain else FollowState.TRACKING
        if not bad:
            self._measure(box)
            if self._state is FollowState.TRACKING and self._hits % cfg.embed_every_frames == 0:
                self._learn_appearance(frame, box)
        return self._result(box, combined, conf, cycle)

    def _cycle_check(self) -> float:
        """Track backwards from the newest frame through the window; IoU with the oldest frame's box."""
        frames = list(self._history)
        newest, oldest = frames[-1], frames[0]
        try:
            self._checker.init(*newest)
        except ValueError:  # the box drifted out of the image
            return 0.0
        back = newest[1]
        for frame, _ in reversed(frames[:-1]):
            back = np.asarray(self._checker.update(frame).box_xyxy, dtype=np.float64)
        return iou_xyxy(back, oldest[1])

    def _measure(self, box: np.ndarray) -> None:
        self._mean, self._cov = kalman.update(self._mean, self._cov, xyxy_to_cxcywh(box[None]),
                                              kalman.measurement_var(xyxy_to_cxcywh(box[None]), self._noise))
        self._hits += 1
        self._updated_s = self._stamp

    # ---------------------------------------------------------------------------------- re-acquisition
    def _reacquire(self, frame: np.ndarray) -> FollowResult:
        """A frame while lost: every ``search_every_frames`` frames, wider search, then detector."""
        self._lost_frames += 1
        predicted = self._predicted_box()
        if self._lost_frames % self.config.search_every_frames:
            return self._result(predicted, 0.0, math.nan, math.nan)
        found, how, conf = self._wider_search(frame, predicted)
        if found is None:
            found, how, conf = self._detector_search(frame)
        if found is not None:
            try:
                self._tracker.init(frame, found)
            except ValueError:  # e.g. a sliver at the image border: keep searching
                found = None
        if found is None:
            return self._result(predicted, 0.0, conf, math.nan)
        self._history.clear()
        self._history.append((frame, found))
        self._template = (frame, found)
        self._mean, self._cov = kalman.initiate(xyxy_to_cxcywh(found[None]), self._noise)
        self._hits += 1
        self._updated_s = self._stamp
        self._state, self._bad, self._cycle = FollowState.TRACKING, 0, 1.0
        return self._result(found, conf, conf, math.nan, f"reacquired:{how}")

    def search_positions(self, predicted_xyxy: np.ndarray) -> np.ndarray:
        """(M, 2) candidate centres [px] of the wider search, nearest the prediction first.

        A grid with steps of one box width in x and half a box height in y, out to the current radius
        (``search_radius`` + ``search_growth_per_s`` x seconds lost, at most ``search_radius_max``
        box sizes), at most ``search_max_candidates`` points.
        """
        cfg = self.config
        radius = min(cfg.search_radius_max, cfg.search_radius + cfg.search_growth_per_s
                     * (self._stamp - self._lost_s))
        cx, cy, w, h = xyxy_to_cxcywh(predicted_xyxy[None])[0]
        nx, ny = math.floor(radius), math.floor(2 * radius)
        gx, gy = np.meshgrid(np.arange(-nx, nx + 1), np.arange(-ny, ny + 1))
        offsets = np.stack([gx.ravel() * w, gy.ravel() * 0.5 * h], axis=1)
        order = np.argsort(np.hypot(offsets[:, 0] / w, offsets[:, 1] / h), kind="stable")
        centres = offsets[order[: cfg.search_max_candidates]] + [cx, cy]
        hh, ww = self._image_hw
        inside = (centres[:, 0] >= 0) & (centres[:, 0] < ww) & (centres[:, 1] >= 0) & (centres[:, 1] < hh)
        return centres[inside]

    def _wider_search(self, frame: np.ndarray,
                      predicted: np.ndarray) -> tuple[np.ndarray | None, str, float]:
        """Run the backend from the last good template at each candidate position; the most confident
        box when confident enough (and, with an embedder, similar enough to the target)."""
        found = self._search_candidates(frame, predicted)
        if not found:
            return None, "search", 0.0
        conf, box = max(found, key=lambda c: c[0])
        hh, ww = self._image_hw
        box = np.clip(box, 0, [ww, hh, ww, hh])
        if conf < self.config.search_min_confidence or not self._looks_like_target(frame, box):
            return None, "search", conf
        return box, "search", conf

    def _search_candidates(self, frame: np.ndarray, predicted: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(confidence, box) of the template-started backend at each wider-search position."""
        import cv2

        t_frame, t_box = self._template
        t_centre = 0.5 * (t_box[:2] + t_box[2:])
        scale = (predicted[3] - predicted[1]) / max(t_box[3] - t_box[1], 1.0)
        hh, ww = self._image_hw
        out = []
        for centre in self.search_positions(predicted):
            # a template-frame point x shows the current-frame point scale * x + offset
            offset = centre - scale * t_centre
            warp = np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])
            shifted = cv2.warpAffine(frame, warp, (ww, hh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REPLICATE)
            try:
                self._checker.init(t_frame, t_box)
            except ValueError:  # the template box left the image: no wider search
                return []
            res = self._checker.update(shifted)
            box = np.asarray(res.box_xyxy, dtype=np.float64) * scale + np.tile(offset, 2)
            if _usable(box):
                out.append((float(res.confidence), box))
        return out

    def _detector_search(self, frame: np.ndarray) -> tuple[np.ndarray | None, str, float]:
        """The detection most similar to the target's embedding, when similar enough."""
        if self._detector is None or self._embedding is None:
            return None, "detector", 0.0
        dets = self._detector.detect(frame)
        if len(dets) == 0:
            return None, "detector", 0.0
        boxes = np.asarray(dets.boxes_xyxy, dtype=np.float64)
        sims = np.asarray(self._embedder.embed(frame, boxes), dtype=np.float64) @ self._embedding
        best = int(np.argmax(sims))
        if sims[best] < self.config.reid_min_similarity or not _usable(boxes[best]):
            return None, "detector", 0.0
        return boxes[best], "detector", float(dets.scores[best])

    # -------------------------------------------------------------------------------------- appearance
    def _embed(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """Unit embedding of one box, or None (no embedder, or no usable crop)."""
        if self._embedder is None:
            return None
        row = np.asarray(self._embedder.embed(frame, box[None]), dtype=np.float64)[0]
        norm = float(np.linalg.norm(row))
        return row / norm if norm > 0 else None

    def _learn_appearance(self, frame: np.ndarray, box: np.ndarray) -> None:
        new = self._embed(frame, box)
        if new is None:
            return
        if self._embedding is None:
            self._embedding = new
            return
        mixed = self.config.embedding_momentum * self._embedding + (1 - self.config.embedding_momentum) * new
        self._embedding = mixed / max(float(np.linalg.norm(mixed)), 1e-12)

    def _looks_like_target(self, frame: np.ndarray, box: np.ndarray) -> bool:
        """Appearance gate of the wider search (always passes without an embedder)."""
        if self._embedder is None or self._embedding is None:
            return True
        emb = self._embed(frame, box)
        return emb is not None and float(emb @ self._embedding) >= self.config.reid_min_similarity

    # ------------------------------------------------------------------------------------------ output
    def _predicted_box(self) -> np.ndarray:
        return cxcywh_to_xyxy(self._mean[:, :4])[0]

    def _result(self, box: np.ndarray, conf: float, backend_conf: float, cycle: float,
                event: str = "") -> FollowResult:
        cfg = self.config
        k = math.floor(cfg.trajectory_horizon_s / cfg.trajectory_step_s + 1e-9)
        times = cfg.trajectory_step_s * np.arange(1, k + 1)
        centres, cov = kalman.predict_trajectory(self._mean, self._cov, times, self._noise)
        return FollowResult(self._target_id, self._state, np.asarray(box, dtype=np.float64),
                            float(np.clip(conf, 0.0, 1.0)), backend_conf, cycle, self._mean[0, 4:8].copy(),
                            self._cov[0, :, 0].copy(), self._stamp - self._start_s, self._hits,
                            self._stamp - self._updated_s, times, centres[0], cov[0], event)


def _usable(box: np.ndarray) -> bool:
    return bool(np.isfinite(box).all() and box[2] - box[0] >= 1.0 and box[3] - box[1] >= 1.0)
