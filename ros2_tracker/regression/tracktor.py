"""Tracktor / Tracktor++ (Bergmann, Meinhardt, Leal-Taixé, ICCV 2019): a detector's RoI heads as the tracker.

Call :meth:`Tracktor.step` once per frame, with the frame's image and a strictly non-decreasing stamp,
and optionally that frame's public detections. Each step runs named stages:

1. ``_move``: camera-motion compensation (:class:`~ros2_tracker.cmc.EccAligner`, optional; the tracks'
   and detections' pixels are left out of the alignment) moves every track (box and Kalman state,
   ``core/kalman.py``), then the constant-velocity prediction to the new stamp (with ``constant_velocity``
   the last regressed boxes move by the filter's velocity; the filter's own boxes lag the box head).
2. ``_regress_active``: the active tracks' boxes (the predicted ones with ``constant_velocity``, else last
   frame's boxes after compensation) go through the regressor's box head as proposals; a track whose class
   score falls below ``sigma_active`` (or whose box collapses) becomes inactive.
3. ``_suppress_tracks``: NMS among the active tracks at ``lambda_active`` (the lower score goes inactive).
4. ``_new_detections``: public detections refined by the same heads (the MOTChallenge public protocol), or
   the detector's own (``detect``), kept above ``sigma_detection``, NMS at ``detection_nms``, and dropped
   where an active track covers them (IoU >= ``lambda_new``).
5. ``_reidentify``: with an embedder, inactive tracks within ``inactive_patience_s`` are matched to the
   remaining detections by cosine distance of appearance (``core.assignment.assign``) and get their identity
   back. The paper also asks an IoU of 0.2 between the inactive track's box and the detection; ``reid_iou``
   is 0 (appearance alone) by default, a measured deviation: on TUD-Campus with OSNet HOTA / IDF1 51.5 /
   69.6 at 0, 48.6 / 63.7 at 0.2 (people come back where their moved box is not).
6. ``_spawn``: new tracks (new ids, never reused) from the detections left.
7. ``_remember_appearance`` and ``_retire``.

The output is the core's :class:`~ros2_tracker.core.track.TrackSet`: active tracks are ``CONFIRMED`` with
``det_indices >= 0`` (their row among this frame's regressed tracks: every active track was measured by the
box head this frame), inactive ones kept for re-identification are ``LOST`` with ``det_indices == -1``, so
``TrackSet.confirmed_and_updated()`` is exactly Tracktor's output. Classes are all ``class_id``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ros2_tracker.cmc.ecc import warp_boxes
from ros2_tracker.core import appearance, kalman
from ros2_tracker.core.assignment import assign
from ros2_tracker.core.boxes import valid_box_mask, xyxy_to_cxcywh
from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.core.costs import iou_matrix
from ros2_tracker.core.track import TrackSet, TrackState, Trajectories
from ros2_tracker.core.tracker import StampError

if TYPE_CHECKING:
    from ros2_tracker.appearance.embedder import Embedder
    from ros2_tracker.cmc.ecc import EccAligner
    from ros2_tracker.regression.regressor import BoxRegressor, Regression

__all__ = ["Tracktor", "TracktorConfig", "greedy_nms"]

_ACTIVE, _INACTIVE = int(TrackState.CONFIRMED), int(TrackState.LOST)


@dataclass(frozen=True)
class TracktorConfig(ConfigBase):
    """Parameters of :class:`Tracktor` (names follow the paper: sigma = score, lambda = IoU thresholds)."""

    sigma_active: float = param(0.5, "A track whose regressed box scores below this becomes inactive",
                                low=0.0, high=1.0)
    lambda_active: float = param(0.6, "NMS among active tracks: of two tracks overlapping by at least this "
                                 "IoU, the lower-scoring one becomes inactive", low=0.0, high=1.0)
    sigma_detection: float = param(0.5, "Minimum score of a (refined) detection to start or re-identify a "
                                   "track", low=0.0, high=1.0)
    lambda_new: float = param(0.3, "A detection overlapping an active track by at least this IoU starts "
                              "nothing", low=0.0, high=1.0)
    detection_nms: float = param(0.3, "NMS IoU among this frame's (refined) detections", low=0.0, high=1.0)
    min_box_size: float = param(2.0, "A track whose regressed box is narrower or lower than this becomes "
                                "inactive", low=0.0, high=1e4, unit="px")
    cmc: bool = param(True, "Camera-motion compensation (ECC) moves tracks before regression (Tracktor++; "
                      "read at start)", read_only=True)
    constant_velocity: bool = param(False, "Move tracks' last regressed boxes by their Kalman velocity "
                                    "before regression (helps at low frame rates)")
    inactive_patience_s: float = param(2.0, "Inactive tracks can be re-identified for this long",
                                       low=0.0, high=3600.0, unit="s")
    reid_max_distance: float = param(0.3, "Maximum cosine distance of appearance to re-identify an "
                                     "inactive track (needs an embedder)", low=0.0, high=2.0)
    reid_iou: float = param(0.0, "Minimum IoU between an inactive track's (moved) box and a detection to "
                            "re-identify it (0 = appearance alone)", low=0.0, high=1.0)
    reid_momentum: float = param(0.8, "Weight of the old embedding in a track's moving average", low=0.0,
                                 high=1.0)
    reid_max_overlap: float = param(0.3, "A track's embedding is updated only while no other track "
                                    "overlaps it by more IoU", low=0.0, high=1.0)
    reid_refresh_s: float = param(0.2, "A track's embedding is updated at most this often (0 = every "
                                  "frame; the re-ID network is the costliest part of a step)", low=0.0,
                                  high=3600.0, unit="s")
    class_id: int = param(0, "Class id given to every track (the class the regressor tracks)", low=0,
                          high=1 << 30)

    def check(self) -> None:
        """Cross-field validation."""
        if self.lambda_new > self.lambda_active:
            raise ConfigError(f"lambda_new: {self.lambda_new} must not exceed lambda_active "
                              f"({self.lambda_active}): a detection covered enough to start no track must "
                              "also be close enough to suppress one")


def greedy_nms(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices (by descending score) of the boxes that no higher-scoring kept box overlaps by IoU >=
    ``iou_threshold``."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    if len(order) < 2:
        return order
    iou = iou_matrix(boxes_xyxy[order], boxes_xyxy[order])
    keep = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if keep[i]:
            keep[i + 1:] &= iou[i, i + 1:] < iou_threshold
    return order[keep]


class Tracktor:
    """Tracktor multi-object tracker; see the module docstring for the stages.

    Args:
        regressor: encodes frames and regresses/scores boxes (e.g. the D2Go Faster R-CNN).
        config: parameters; defaults when None.
        embedder: appearance model for re-identifying inactive tracks (None: inactive tracks are dropped).
        aligner: camera-motion estimator, used when ``config.cmc`` (None: an ECC aligner with defaults).

    Attributes:
        encode_seconds, regress_seconds, detect_seconds, embed_seconds: wall time inside the regressor's
            ``encode``, ``regress`` (tracks and public detections) and ``detect``, and the embedder [s].
        size_changes: frames whose image size differed from the frame before: Tracktor restarted its
            tracks there (new ids), as the old boxes and image no longer fit.
        dropped_detections: invalid public detections (NaN, inf, empty boxes, none of the box inside the
            image) seen so far.
    """

    def __init__(self, regressor: BoxRegressor, config: TracktorConfig | None = None, *,
                 embedder: Embedder | None = None, aligner: EccAligner | None = None) -> None:
        self.config = config or TracktorConfig()
        self.regressor = regressor
        self.embedder = embedder
        if self.config.cmc and aligner is None:
            from ros2_tracker.cmc.ecc import EccAligner

            aligner = EccAligner()
        self.aligner = aligner if self.config.cmc else None
        self._noise = kalman.MotionNoise()
        self._next_id = 1
        self.encode_seconds = self.regress_seconds = self.detect_seconds = self.embed_seconds = 0.0
        self.dropped_detections = 0
        self.size_changes = 0
        self.reset()

    @property
    def cmc_seconds(self) -> float:
        """Wall time inside camera-motion estimation [s]."""
        return self.aligner.seconds if self.aligner is not None else 0.0

    def reset(self) -> None:
        """Drop every track, the clock and the previous frame (ids keep counting up)."""
        self._stamp: float | None = None
        self._image_size: tuple[int, ...] | None = None
        self._ids = np.empty(0, dtype=np.int64)
        self._state = np.empty(0, dtype=np.int8)
        self._boxes = np.empty((0, 4))
        self._score = np.empty(0)
        self._mean = np.empty((0, 8))
        self._cov = np.empty((0, 4, 3))
        self._hits = np.empty(0, dtype=np.int64)
        self._born = np.empty(0)
        self._last = np.empty(0)
        self._emb = np.empty((0, 0), dtype=np.float32)
        self._has_emb = np.empty(0, dtype=bool)
        self._emb_at = np.empty(0)  # stamp of each track's last embedding update (-inf: none)
        if self.aligner is not None:
            self.aligner.reset()

    def __len__(self) -> int:
        return len(self._ids)

    # ------------------------------------------------------------------ public API
    def step(self, image_bgr: np.ndarray, *, stamp: float, detections_xyxy: np.ndarray | None = None,
             detection_scores: np.ndarray | None = None) -> TrackSet:
        """Track one frame.

        Args:
            image_bgr: (H, W, 3) uint8 BGR frame.
            stamp: time of the frame [s]; not earlier than the previous one.
            detections_xyxy: (D, 4) public detections [px, xyxy], refined by the regressor's heads; None =
                private mode (the regressor's own ``detect``). Invalid rows are dropped and counted.
            detection_scores: (D,) scores of the public detections (used only to drop non-finite rows).

        Returns:
            Active (CONFIRMED) and re-identifiable inactive (LOST) tracks; see the module docstring.

        Raises:
            StampError: the stamp went backwards or is not finite.
            ValueError: not an image, or detection arrays of inconsistent shapes.
        """
        dets = self._check_detections(detections_xyxy, detection_scores, getattr(image_bgr, "shape", ()))
        features = self._timed("encode_seconds", self.regressor.encode, image_bgr)  # checks the image
        size = tuple(np.shape(image_bgr)[:2])
        if self._image_size is not None and size != self._image_size:  # another camera or resolution:
            self.reset()  # the tracks' boxes and the previous frame no longer fit the image
            self.size_changes += 1
        self._image_size = size
        dt = self._advance_clock(stamp)
        self._move(image_bgr, dt, dets)
        self._regress_active(features)
        self._suppress_tracks()
        new_boxes, new_scores = self._new_detections(features, dets)
        new_boxes, new_scores, new_feats = self._reidentify(image_bgr, new_boxes, new_scores)
        self._spawn(new_boxes, new_scores, new_feats)
        self._remember_appearance(image_bgr)
        self._retire()
        return self.tracks()

    def tracks(self) -> TrackSet:
        """The tracks as of the last step (see the module docstring for states and det_indices)."""
        now = self._stamp if self._stamp is not None else 0.0
        active = self._state == _ACTIVE
        det = np.full(len(self._ids), -1, dtype=np.int64)
        det[active] = np.arange(int(active.sum()))
        return TrackSet(ids=self._ids.copy(), boxes_xyxy=self._boxes.copy(), scores=self._score.copy(),
                        classes=np.full(len(self._ids), self.config.class_id, dtype=np.int64),
                        states=self._state.copy(), velocities=self._mean[:, 4:].copy(),
                        box_variances=self._cov[:, :, 0].copy(), hits=self._hits.copy(),
                        ages_s=now - self._born, time_since_update_s=now - self._last, det_indices=det)

    def predict_trajectories(self, horizon_s: float, step_s: float) -> Trajectories:
        """Future centres of the tracks :meth:`tracks` reports (same order), ``step_s`` apart up to
        ``horizon_s``, from each track's constant-velocity Kalman state."""
        if step_s <= 0 or horizon_s < 0:
            raise ValueError("trajectory step must be > 0 and horizon >= 0")
        times = np.arange(1, math.floor(horizon_s / step_s + 1e-9) + 1) * step_s
        centres, cov = kalman.predict_trajectory(self._mean, self._cov, times, self._noise)
        return Trajectories(self._ids.copy(), times, centres, cov)

    # ------------------------------------------------------------------ stages
    def _timed(self, counter: str, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            setattr(self, counter, getattr(self, counter) + time.perf_counter() - t0)

    def _check_detections(self, boxes, scores, image_shape) -> np.ndarray | None:
        """Valid public detections, clipped to the image (as Tracktor's proposals are): a box far outside
        it made the regressor's RoI pooling sample a huge area (minutes for one box of 1e9 px). Rows left
        without area inside the image are dropped and counted with the invalid ones."""
        if boxes is None:
            return None
        b = np.asarray(boxes, dtype=np.float64)
        if b.size == 0:
            b = b.reshape(0, 4)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"detections must be (D, 4) xyxy boxes, got shape {b.shape}")
        s = None if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        if s is not None and len(s) != len(b):
            raise ValueError(f"detections ({len(b)}) and scores ({len(s)}) must have the same length")
        ok = valid_box_mask(b, s)
        b = b[ok]
        if len(image_shape) >= 2 and len(b):
            h, w = image_shape[:2]
            b = np.clip(b, 0.0, (w, h, w, h))
            inside = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            ok[np.flatnonzero(ok)[~inside]] = False
            b = b[inside]
        self.dropped_detections += int((~ok).sum())
        return b

    def _advance_clock(self, stamp: float) -> float:
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise StampError(f"stamp must be finite, got {stamp}")
        previous, self._stamp = self._stamp, stamp
        if previous is None:
            return 0.0
        if stamp < previous:
            self._stamp = previous
            raise StampError(f"stamp {stamp:.6f} s is earlier than the previous {previous:.6f} s")
        return stamp - previous

    def _move(self, image_bgr: np.ndarray, dt: float, dets: np.ndarray | None) -> None:
        """Camera-motion compensation (the tracks' and detections' pixels left out: they move by
        themselves), then the constant-velocity prediction (every track)."""
        if self.aligner is not None:
            moving = self._boxes[self._state == _ACTIVE]
            if dets is not None:
                moving = np.concatenate([moving, dets])
            warp = self.aligner.estimate(image_bgr, moving)
            if len(self._ids):
                self._boxes = warp_boxes(self._boxes, warp)
                self._mean, self._cov = kalman.warp_affine(self._mean, self._cov, warp)
        if len(self._ids) and dt > 0:
            self._mean, self._cov = kalman.predict(self._mean, self._cov, dt, self._noise)
            if self.config.constant_velocity:
                # the last regressed box moved by the filter's velocity (the paper's motion model), not the
                # filter's smoothed box, which lags the box head: 6.0 vs 3.7 px from the proposal to the
                # regressed box on TUD-Campus, HOTA 50.1 -> 50.3, MOTA 59.6 -> 63.5
                self._boxes = self._boxes + np.tile(self._mean[:, 4:6] * dt, 2)

    def _regress_active(self, features) -> None:
        """Box head on the active tracks; low scores or collapsed boxes make tracks inactive."""
        rows = (self._state == _ACTIVE).nonzero()[0]
        if not len(rows):
            return
        reg: Regression = self._timed("regress_seconds", self.regressor.regress, features, self._boxes[rows])
        size = reg.boxes_xyxy[:, 2:] - reg.boxes_xyxy[:, :2]
        big = (size >= max(self.config.min_box_size, 1e-6)).all(axis=1)
        alive = (reg.scores >= self.config.sigma_active) & big
        state = self._state.copy()
        state[rows[~alive]] = _INACTIVE
        self._state = state
        live = rows[alive]
        if len(live):
            boxes, score = self._boxes.copy(), self._score.copy()
            boxes[live], score[live] = reg.boxes_xyxy[alive], reg.scores[alive]
            self._boxes, self._score = boxes, score
            self._measure(live, reg.boxes_xyxy[alive])

    def _measure(self, rows: np.ndarray, boxes_xyxy: np.ndarray) -> None:
        """Kalman update of ``rows`` with their regressed boxes; they count as seen now."""
        z = xyxy_to_cxcywh(boxes_xyxy)
        mean, cov = self._mean.copy(), self._cov.copy()
        var = kalman.measurement_var(z, self._noise)
        mean[rows], cov[rows] = kalman.update(mean[rows], cov[rows], z, var)
        self._mean, self._cov = mean, cov
        hits, last = self._hits.copy(), self._last.copy()
        hits[rows] += 1
        last[rows] = self._stamp
        self._hits, self._last = hits, last

    def _suppress_tracks(self) -> None:
        rows = (self._state == _ACTIVE).nonzero()[0]
        if len(rows) < 2:
            return
        keep = greedy_nms(self._boxes[rows], self._score[rows], self.config.lambda_active)
        gone = np.setdiff1d(rows, rows[keep])
        if len(gone):
            state = self._state.copy()
            state[gone] = _INACTIVE
            self._state = state

    def _new_detections(self, features, dets: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Refined public or private detections that no active track covers, by descending score."""
        cfg = self.config
        if dets is None:
            reg = self._timed("detect_seconds", self.regressor.detect, features)
        else:
            reg = self._timed("regress_seconds", self.regressor.regress, features, dets)
        size_ok = ((reg.boxes_xyxy[:, 2:] - reg.boxes_xyxy[:, :2]) >= max(cfg.min_box_size, 1e-6)).all(1)
        ok = (reg.scores >= cfg.sigma_detection) & size_ok
        boxes, scores = reg.boxes_xyxy[ok], reg.scores[ok]
        keep = greedy_nms(boxes, scores, cfg.detection_nms)
        boxes, scores = boxes[keep], scores[keep]
        active = self._boxes[self._state == _ACTIVE]
        if len(active) and len(boxes):
            free = iou_matrix(boxes, active).max(axis=1) < cfg.lambda_new
            boxes, scores = boxes[free], scores[free]
        return boxes, scores

    def _embed(self, image_bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        feats = self._timed("embed_seconds", self.embedder.embed, image_bgr, boxes)
        return appearance.normalise(feats)

    def _reidentify(self, image_bgr, boxes, scores):
        """Inactive tracks vs new detections by appearance (IoU-gated); matched tracks become active."""
        if self.embedder is None or not len(boxes):
            return boxes, scores, None
        feats = self._embed(image_bgr, boxes)
        rows = ((self._state == _INACTIVE) & self._has_emb).nonzero()[0]
        if not len(rows) or self._emb.shape[1] != feats.shape[1]:  # none, or another embedding model now
            return boxes, scores, feats
        cost = appearance.cosine_distance(self._emb[rows], feats)
        if self.config.reid_iou > 0:
            cost[iou_matrix(self._boxes[rows], boxes) < self.config.reid_iou] = np.inf
        cost[:, ~feats.any(axis=1)] = np.inf
        m = assign(cost, self.config.reid_max_distance + 1e-9).matches
        if not len(m):
            return boxes, scores, feats
        t, d = rows[m[:, 0]], m[:, 1]
        self._revive(t, boxes[d], scores[d])
        left = np.setdiff1d(np.arange(len(boxes)), d)
        return boxes[left], scores[left], feats[left]

    def _revive(self, rows: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> None:
        mean, cov = kalman.initiate(xyxy_to_cxcywh(boxes), self._noise)
        for name, values in (("_mean", mean), ("_cov", cov), ("_boxes", boxes), ("_score", scores)):
            arr = getattr(self, name).copy()
            arr[rows] = values
            setattr(self, name, arr)
        state, hits, last = self._state.copy(), self._hits.copy(), self._last.copy()
        state[rows], last[rows] = _ACTIVE, self._stamp
        hits[rows] += 1
        self._state, self._hits, self._last = state, hits, last

    def _spawn(self, boxes: np.ndarray, scores: np.ndarray, feats: np.ndarray | None) -> None:
        n = len(boxes)
        if not n:
            return
        mean, cov = kalman.initiate(xyxy_to_cxcywh(boxes), self._noise)
        now = np.full(n, self._stamp)
        self._ids = np.concatenate([self._ids, np.arange(self._next_id, self._next_id + n, dtype=np.int64)])
        self._next_id += n
        self._state = np.concatenate([self._state, np.full(n, _ACTIVE, dtype=np.int8)])
        self._boxes = np.concatenate([self._boxes, boxes])
        self._score = np.concatenate([self._score, scores])
        self._mean = np.concatenate([self._mean, mean])
        self._cov = np.concatenate([self._cov, cov])
        self._hits = np.concatenate([self._hits, np.ones(n, dtype=np.int64)])
        self._born = np.concatenate([self._born, now])
        self._last = np.concatenate([self._last, now])
        if feats is not None and self._emb.shape[1] in (0, feats.shape[1]):
            if self._emb.shape[1] == 0:
                self._emb = np.zeros((len(self._has_emb), feats.shape[1]), dtype=np.float32)
            self._emb = np.concatenate([self._emb, feats])
            self._has_emb = np.concatenate([self._has_emb, feats.any(axis=1)])
            self._emb_at = np.concatenate([self._emb_at, np.where(feats.any(axis=1), self._stamp, -np.inf)])
        else:
            self._emb = np.concatenate([self._emb, np.zeros((n, self._emb.shape[1]), dtype=np.float32)])
            self._has_emb = np.concatenate([self._has_emb, np.zeros(n, dtype=bool)])
            self._emb_at = np.concatenate([self._emb_at, np.full(n, -np.inf)])

    def _remember_appearance(self, image_bgr: np.ndarray) -> None:
        """Moving-average embeddings of the active tracks that no other active track occludes, each at
        most every ``reid_refresh_s`` (the re-ID network is the costliest part of a step)."""
        if self.embedder is None:
            return
        rows = (self._state == _ACTIVE).nonzero()[0]
        rows = rows[appearance.unoccluded(self._boxes[rows], self.config.reid_max_overlap)]
        rows = rows[self._stamp - self._emb_at[rows] >= self.config.reid_refresh_s - 1e-9]
        if not len(rows):
            return
        feats = self._embed(image_bgr, self._boxes[rows])
        ok = feats.any(axis=1)
        rows, feats = rows[ok], feats[ok]
        if not len(rows):
            return
        if self._emb.shape[1] != feats.shape[1]:
            self._emb = np.zeros((len(self._ids), feats.shape[1]), dtype=np.float32)
            self._has_emb = np.zeros(len(self._ids), dtype=bool)
        emb, has, at = self._emb.copy(), self._has_emb.copy(), self._emb_at.copy()
        mom = np.where(has[rows], self.config.reid_momentum, 0.0)[:, None]
        emb[rows] = appearance.normalise(mom * emb[rows] + (1.0 - mom) * feats)
        has[rows], at[rows] = True, self._stamp
        self._emb, self._has_emb, self._emb_at = emb, has, at

    def forget_appearance(self) -> None:
        """Drop every track's appearance memory (another re-ID model: its embeddings are not comparable);
        active tracks are kept and start new memories, inactive ones go (nothing could re-identify them)."""
        if len(self._ids):
            self._keep(self._state != _INACTIVE)
        self._emb = np.empty((len(self._ids), 0), dtype=np.float32)
        self._has_emb = np.zeros(len(self._ids), dtype=bool)
        self._emb_at = np.full(len(self._ids), -np.inf)

    def _retire(self) -> None:
        """Inactive tracks past the patience window (at once without an embedder) are dropped."""
        patience = self.config.inactive_patience_s if self.embedder is not None else -1.0
        stale = (self._state == _INACTIVE) & (self._stamp - self._last > patience)
        if stale.any():
            self._keep(~stale)

    def _keep(self, mask: np.ndarray) -> None:
        """Keep only the tracks where ``mask`` is True, in every per-track array."""
        for name in ("_ids", "_state", "_boxes", "_score", "_mean", "_cov", "_hits", "_born", "_last",
                     "_emb", "_has_emb", "_emb_at"):
            setattr(self, name, getattr(self, name)[mask])
