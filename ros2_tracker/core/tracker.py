"""Online tracking-by-detection: staged association over a batched constant-velocity Kalman filter.

Call :meth:`Tracker.update` once per frame, **including frames without detections** (lost tracks
must age), with strictly non-decreasing timestamps. Each update runs named stages:

1. ``_predict``: every track moves to the frame's stamp (dt from stamps, not frame counts).
2. ``_associate_confident``: confirmed and lost tracks vs confident detections (IoU; lost tracks'
   boxes are widened by their position uncertainty, so a track coasting through an occlusion can
   still be found; with ``motion_model: learned`` they are placed where the learned model predicts).
   Lost tracks pay ``lost_match_penalty`` on top of their cost, so a detection both could take goes
   to the track that was seen in the last frame (a soft form of deep_sort's matching cascade): a
   coasting track, whose prediction drifts, no longer steals its neighbour's detection at a crossing.
   Confirmed tracks also weigh the low-score detections here (ByteTrack's idea: occluded people give
   weak detections that should extend tracks, never start them), gated at ``low_score_match_iou``, in
   the same assignment: a track whose person is now weakly detected keeps that detection instead of
   taking a neighbour's overlapping confident one (``low_score_association: joint``).
3. ``_associate_low_score`` (``low_score_association: second_stage``, ByteTrack's order): still-unmatched
   confirmed tracks vs low-score detections, after the confident ones.
4. ``_associate_tentative``: tentative tracks vs the confident detections left over.
5. ``_correct``: one batched Kalman update for all matches; lifecycle bookkeeping. With
   ``adaptive_measurement_noise`` the matches' height innovations first refine the estimate of the
   detector's box noise (used when below ``measurement_noise``): a smoothing that suits a jittery
   detector makes a precise detector's boxes lag, most visibly under a moving camera. The update is
   robust (``robust_update_sigma``): a box whose height is far off the prediction, such as a partial
   detection or one box around two crossing people, counts for less, so it keeps its track alive
   without bending the track's size and velocity.
6. ``_retire``: tentative tracks that missed, lost tracks older than ``max_lost_s``.
7. ``_spawn``: new tentative tracks from unmatched detections above ``new_track_score``.

Each track's recent measured boxes are kept in a ring buffer (``motion_history_frames`` columns,
one per update) for the configured :class:`~ros2_tracker.core.motion.TrajectoryPredictor`, which
also gives :meth:`Tracker.predict_trajectories`.

Tracks are stored as parallel arrays (structure of arrays), so the per-frame cost has no
per-track Python loop. Classes never mix. Ids come from this instance and are never reused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ros2_tracker.core import appearance, kalman
from ros2_tracker.core.adaptation import CommonMotion, NoiseEstimate
from ros2_tracker.core.assignment import assign_ids, assign_sparse, ids_of
from ros2_tracker.core.boxes import cxcywh_to_xyxy, valid_box_mask, xyxy_to_cxcywh
from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.core.costs import (
    gate_classes,
    ground_distance,
    ground_distance_pairs,
    iou_matrix,
    iou_pairs,
    overlapping_pairs,
)
from ros2_tracker.core.motion import (
    ConstantVelocityPredictor,
    MotionHistory,
    TrajectoryPredictor,
    check_trajectory_sampling,
    push_history,
    warp_history,
)
from ros2_tracker.core.track import TrackSet, TrackState, Trajectories

__all__ = ["StampError", "Tracker", "TrackerConfig", "score_scale_warning", "strongest"]

_TENT, _CONF, _LOST = int(TrackState.TENTATIVE), int(TrackState.CONFIRMED), int(TrackState.LOST)
_LEARNED_HISTORY_FRAMES = 48  # automatic history with a learned motion model: 1.4 s up to ~34 fps
_DENSE_LIMIT = 4096  # above this many track x detection pairs, use the sparse path
_CHI2_99_2DOF = 9.21  # 99 % gate of a 2-D position
_MIN_WARP_AREA = 1e-6  # apply_camera_motion: a warp may scale areas by this to its inverse
_COMMON_MOTION_MIN_TRACKS = 3  # camera_motion_gain: established matched tracks needed to estimate it
_COMMON_MOTION_MIN_HITS = 3
# next state by (state * 4 + matched * 2 + hits >= min_hits): a match confirms a tentative track with
# enough hits and any lost one; a miss makes a confirmed track lost (unmatched tentative ones are retired)
_NEXT_STATE = np.array([_TENT, _TENT, _TENT, _CONF, _LOST, _LOST, _CONF, _CONF, _LOST, _LOST, _CONF, _CONF],
                       dtype=np.int8)
_NEXT_STATE.flags.writeable = False
_MISSED_TENTATIVE = np.array([True, True] + [False] * 10)  # same key: a tentative track without a match
_MISSED_TENTATIVE.flags.writeable = False
# What the association stages return: (K, 2) matched (track row, detection index) pairs, and the detection
# indices left over; and the low-score columns' gate of a joint assignment: (is low-score per column,
# may take a low-score detection per row).
_Matched = tuple[np.ndarray, np.ndarray]
_Weak = tuple[np.ndarray, np.ndarray]

_NO_INDEX = np.empty(0, dtype=np.intp)
_NO_PAIRS = np.empty((0, 2), dtype=np.intp)
_NO_BOXES = np.empty((0, 4))
_NO_INDEX.flags.writeable = False
_NO_PAIRS.flags.writeable = False
_NO_BOXES.flags.writeable = False


def _nearly_singular(h: np.ndarray) -> bool:
    """Whether the 3x3 matrix ``h``, scaled to entries of at most 1 (a homography is defined up to scale; the
    determinant of raw entries of 1e200 overflows, of 1e-200 underflows), has a determinant below 1e-12."""
    top = float(np.abs(h).max())
    return top == 0.0 or abs(float(np.linalg.det(h / top))) <= 1e-12


def _filled(n: int, value: float, dtype: type = np.float64) -> np.ndarray:
    """``np.full(n, value)``: for a frame's few rows, np.full's Python wrapper costs more than the fill."""
    out: np.ndarray = np.empty(n, dtype=dtype)
    out.fill(value)
    return out


def _submatrix(m: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``m[rows][:, cols]`` for ascending index subsets (a full subset is the matrix itself: no copy)."""
    if len(rows) != m.shape[0]:
        m = m.take(rows, axis=0)
    return m if len(cols) == m.shape[1] else m.take(cols, axis=1)


def _class_ids(classes: ArrayLike) -> np.ndarray:
    """(D,) int64 class ids; ValueError for values that are not integers within int64 (1.5, inf, 2**64),
    which a cast would turn into other classes."""
    c = np.asarray(classes).reshape(-1)
    if c.dtype.kind in "iub":
        if c.dtype.kind == "u" and c.size and c.max() > np.iinfo(np.int64).max:
            raise ValueError("classes: ids beyond int64")
        return c.astype(np.int64)
    try:
        f = c.astype(np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"classes: expected integer ids, got {c.dtype}") from None
    if not (np.isfinite(f).all() and (f == np.round(f)).all() and (np.abs(f) < 2.0 ** 63).all()):
        raise ValueError("classes: expected integer ids (finite, whole, within int64)")
    return f.astype(np.int64)


def strongest(scores: np.ndarray, limit: int) -> np.ndarray:
    """Rows of the ``limit`` highest ``scores``, ascending (ties: the earlier rows): the detections an
    update keeps under ``max_detections``."""
    return np.sort(np.argsort(-np.asarray(scores), kind="stable")[:limit])


class StampError(ValueError):
    """A stamp went backwards (e.g. a looped bag). Call :meth:`Tracker.reset` to start over."""


@dataclass(frozen=True)
class TrackerConfig(ConfigBase):
    """Parameters of :class:`Tracker` (ROS parameters of ``tracker_node`` share these names)."""

    high_score: float = param(0.5, "Detections scoring at least this are associated first and "
                              "may start tracks", low=0.0)
    low_score: float = param(0.1, "Detections scoring below this are ignored; between low_score and "
                             "high_score they only extend existing tracks", low=0.0)
    new_track_score: float = param(0.6, "Minimum score of an unmatched detection to start a track",
                                   low=0.0)
    match_iou: float = param(0.2, "Minimum IoU to match a confident detection to a track (a pair needs "
                             "more)", low=0.0, high=0.99)
    low_score_match_iou: float = param(0.5, "Minimum IoU to match a low-score detection (a pair needs more)",
                                       low=0.0, high=0.99)
    low_score_association: str = param("joint", "How low-score detections reach confirmed tracks: "
                                       "'joint' weighs them in the same assignment as the confident "
                                       "ones (at low_score_match_iou), so a track whose object is now "
                                       "only weakly detected keeps that detection instead of taking a "
                                       "neighbour's confident one; 'second_stage' offers them afterwards "
                                       "to the confirmed tracks left unmatched (ByteTrack)",
                                       choices=("joint", "second_stage"))
    max_detections: int = param(2000, "Most detections one update uses: beyond it only the highest-"
                                "scoring are tracked and the rest counted (a guard against a detector "
                                "without non-maximum suppression, whose piles of boxes make assignment "
                                "costly; crowded scenes hold a few hundred people)", low=1, high=10_000_000)
    tentative_match_iou: float = param(0.2, "Minimum IoU to match a detection to a tentative track. A "
                                       "tentative track has one box and no velocity yet, so its prediction "
                                       "is the least certain: its gate is no stricter than match_iou, or a "
                                       "fast object (a low frame rate, a turning vehicle) is restarted "
                                       "every frame instead of confirmed", low=0.0, high=0.99)
    min_hits: int = param(2, "Consecutive matches before a tentative track is confirmed", low=1,
                          high=1000)
    max_lost_s: float = param(1.5, "Seconds a confirmed track coasts without detections before it "
                              "is removed", low=0.0, high=3600.0, unit="s")
    report_lost_s: float = param(0.0, "Results files (track, demo, replay) also report confirmed "
                                 "tracks that have coasted without a detection for at most this long, "
                                 "at their predicted box (0 = only tracks matched in the frame). Gains "
                                 "where the ground truth annotates occluded objects and the detector "
                                 "misses a frame now and then; costs false positives where it leaves "
                                 "occluded objects out (MOT15). Topics are not affected: the tracker "
                                 "node publishes every track with its state", low=0.0, high=3600.0,
                                 unit="s")
    confirm_first_frame: bool = param(True, "Tracks started in the first frame (after start or reset) "
                                      "are confirmed at once: there is no history to wait for")
    lost_match_penalty: float = param(0.3, "Cost added to a lost (coasting) track's matches with "
                                      "confident detections: a detection that a track seen in the "
                                      "last frame can also take goes to that one, unless the lost "
                                      "track's IoU is this much higher. A lone lost track still "
                                      "matches at match_iou (0 = no priority)", low=0.0, high=1.0)
    lost_box_growth: float = param(0.0, "Lost tracks' boxes are widened by this many standard "
                                   "deviations of their predicted position when matched", low=0.0,
                                   high=10.0)
    measurement_noise: float = param(0.1, "Box measurement standard deviation, relative to box "
                                     "height; with adaptive_measurement_noise the starting value and "
                                     "upper bound", low=1e-4, high=10.0)
    adaptive_measurement_noise: bool = param(True, "Estimate the detector's box noise from the matched "
                                             "tracks' height innovations and use it where it is below "
                                             "measurement_noise: a precise detector gets boxes that keep "
                                             "up with it (and with a moving camera)")
    min_measurement_noise: float = param(0.03, "With adaptive_measurement_noise: the lowest measurement "
                                         "noise it may choose, relative to box height", low=1e-4,
                                         high=10.0)
    robust_update_sigma: float = param(2.5, "Robust (Huber) Kalman update: a matched box whose height "
                                       "is more than this many standard deviations from the track's "
                                       "prediction corrects the track only as much as one this many "
                                       "deviations off would, so a partial detection (a head, an upper "
                                       "body) or one box around two people barely bends the track's "
                                       "size and velocity; the match itself stands (0 = plain update)",
                                       low=0.0, high=100.0)
    velocity_noise: float = param(0.5, "White-noise acceleration density, relative to box height "
                                  "[1/s^1.5]", low=0.0, high=100.0)
    position_noise: float = param(0.1, "Position random-walk density, relative to box height "
                                  "[1/s^0.5]", low=0.0, high=100.0)
    initial_velocity_noise: float = param(1.0, "Standard deviation of a new track's unknown "
                                          "velocity, relative to box height [1/s]", low=0.0,
                                          high=100.0)
    camera_motion_gain: float = param(0.5, "Image motion from the detections alone (a moving camera, no "
                                      "images needed): each update, every track moves by at most this "
                                      "share of the median centre innovation of the established matched "
                                      "tracks (at least 3), and its velocity by the same share per second, "
                                      "so lost tracks follow a panning image too; the full share while "
                                      "camera_motion_gate is open, else weighted by how far that median "
                                      "stands out of its own noise (0 = off; with images, CMC does it "
                                      "better)", low=0.0, high=1.0)
    camera_motion_gate: float = param(0.6, "Apply the full camera_motion_gain while the matched tracks' "
                                      "common innovation (its median) is correlated from one update to the "
                                      "next at least this much (lag-1 autocorrelation, running means over "
                                      "1 s, after 1 s of updates): a Kalman filter that fits the people "
                                      "leaves it white noise, a moving camera gives every track the same "
                                      "lasting error. 0 = always the full gain (a camera known to move)",
                                      low=0.0, high=1.0)
    motion_gate: float = param(0.0, "After IoU matching, match remaining confident detections to "
                               "confirmed/lost tracks by Mahalanobis distance of the box below this "
                               "chi-square value (0 = off; 9.49 = 95 % for 4 dof); helps at low frame "
                               "rates where fast objects' boxes stop overlapping", low=0.0, high=100.0)
    appearance_weight: float = param(0.3, "With embeddings: weight of the cosine distance in the fused "
                                     "IoU/appearance cost of confident matches", low=0.0, high=1.0)
    appearance_threshold: float = param(0.3, "With embeddings: maximum cosine distance of a match; "
                                        "also the re-identification threshold near the prediction",
                                        low=0.0, high=2.0)
    reid_threshold: float = param(0.2, "With embeddings: maximum cosine distance to re-identify a lost "
                                  "track far from its predicted position (stricter)", low=0.0, high=2.0)
    reid_max_age_s: float = param(5.0, "With embeddings: a lost track can get its identity back by "
                                  "appearance for this long (not published after max_lost_s)", low=0.0,
                                  high=3600.0, unit="s")
    embedding_momentum: float = param(0.9, "Weight of the old embedding in a track's moving average",
                                      low=0.0, high=1.0)
    embedding_max_overlap: float = param(0.3, "A track's embedding is updated only from confident "
                                         "detections overlapping no other detection by more IoU",
                                         low=0.0, high=1.0)
    class_aware: bool = param(True, "Never associate detections and tracks of different classes")
    trajectory_horizon_s: float = param(2.0, "How far ahead predicted trajectories reach (at most 1,000 "
                                        "points of trajectory_step_s)", low=0.0, high=60.0, unit="s")
    trajectory_step_s: float = param(0.2, "Time between predicted trajectory points", low=0.001,
                                     high=60.0, unit="s")
    motion_model: str = param("constant_velocity", "Trajectory predictor: the constant-velocity Kalman "
                              "filter, or a learned recurrent model (motion_model_path, made by "
                              "ros2-tracker train-motion)", choices=("constant_velocity", "learned"),
                              read_only=True)
    motion_model_path: str = param("", "With motion_model learned: the motion ONNX model file",
                                   read_only=True)
    motion_history_frames: int = param(0, "Updates of box history kept per track (ring buffer) for "
                                       "the learned motion model and motion_history(); should cover the "
                                       "model's history window. 0 = automatic: 48 (1.4 s up to ~34 fps) "
                                       "with motion_model learned, none otherwise (nothing reads it)",
                                       low=0, high=1000, read_only=True)
    learned_lost_boxes: bool = param(True, "With motion_model learned: lost tracks are matched where "
                                     "the learned model puts them now (through occlusions), not where "
                                     "constant velocity does")
    ground_homography: list = param([], "Optional 3x3 image-to-ground homography (9 numbers, row "
                                    "major, pixels -> metres); enables max_ground_distance_m. tracker_node "
                                    "and `track --calibration` take its sign (a homography is defined up "
                                    "to scale) from the first detections' foot points")
    max_ground_distance_m: float = param(2.0, "With a homography: never match boxes whose foot "
                                         "points are further apart on the ground (IoU matches, with or "
                                         "without appearance; re-identifying a lost track by appearance "
                                         "alone is not limited)", low=0.0, unit="m")

    def check(self) -> None:
        """Cross-field validation."""
        if self.low_score > self.high_score:
            raise ConfigError(f"low_score: {self.low_score} must not exceed high_score "
                              f"({self.high_score})")
        if self.reid_threshold > self.appearance_threshold:
            raise ConfigError(f"reid_threshold: {self.reid_threshold} must not exceed appearance_threshold "
                              f"({self.appearance_threshold}): far re-identification is the stricter one")
        if self.motion_model == "learned" and not self.motion_model_path:
            raise ConfigError("motion_model_path: must name a motion ONNX model when motion_model is "
                              "learned (ros2-tracker train-motion writes one)")
        if self.min_measurement_noise > self.measurement_noise:
            raise ConfigError(f"min_measurement_noise: {self.min_measurement_noise} must not exceed "
                              f"measurement_noise ({self.measurement_noise})")
        if self.motion_history_frames == 1:
            raise ConfigError("motion_history_frames: must be 0 (automatic) or at least 2, got 1")
        check_trajectory_sampling(self.trajectory_horizon_s, self.trajectory_step_s)
        h = self.ground_homography
        if h and (len(h) != 9 or not all(isinstance(v, (int, float)) and math.isfinite(v)
                                         for v in h)):
            raise ConfigError("ground_homography: expected 9 finite numbers (3x3, row major) or []")
        if h and _nearly_singular(np.reshape(np.asarray(h, dtype=np.float64), (3, 3))):
            raise ConfigError("ground_homography: singular matrix (it maps the image onto a line or a point, "
                              "so no two boxes could ever match)")

    @property
    def start_score(self) -> float:
        """The lowest detection score that can start a track (it must be confident and reach
        new_track_score)."""
        return max(self.high_score, self.new_track_score)

    @property
    def history_frames(self) -> int:
        """Columns of box history the tracker keeps: ``motion_history_frames``, or when that is 0 (automatic)
        48 with a learned motion model and none otherwise."""
        if self.motion_history_frames:
            return self.motion_history_frames
        return _LEARNED_HISTORY_FRAMES if self.motion_model == "learned" else 0

    @property
    def noise(self) -> kalman.MotionNoise:
        """The Kalman filter's noise levels."""
        return kalman.MotionNoise(self.measurement_noise, self.velocity_noise, self.position_noise,
                                  self.initial_velocity_noise)


def score_scale_warning(max_score: float, config: TrackerConfig) -> str | None:
    """A warning when the detection scores do not fit the score thresholds, else None.

    Two mismatches: scores above 1 while the thresholds assume probabilities (detectors such as ACF give
    unbounded scores, MOT15's public detections reach ~120: with the default thresholds nearly every
    detection is then confident and may start a track, and the low-score stage never runs); and scores
    that never reach :attr:`TrackerConfig.start_score` (a detector or file without scores, which
    MOTChallenge files write as -1, or a message whose score field was left at 0): no track ever starts
    and nothing is tracked. The fix is the user's: thresholds in the detector's own score range, or scores.

    Args:
        max_score: the highest detection score seen (NaN: no opinion).
        config: the tracker's configuration, whose thresholds the scores are compared with.
    """
    start = config.start_score
    if max_score < start:
        return (f"detection scores are at most {max_score:.4g}, below what starts a track (high_score / "
                f"new_track_score {config.high_score:g} / {config.new_track_score:g}): nothing is tracked; "
                "does the detector give scores (MOTChallenge files write -1 for none)? Otherwise set the "
                "thresholds for its score range")
    if not max_score > 1.0 or max(config.high_score, config.low_score, config.new_track_score) > 1.0:
        return None
    return (f"detection scores reach {max_score:.4g}, but high_score / low_score / new_track_score "
            f"({config.high_score:g} / {config.low_score:g} / {config.new_track_score:g}) assume scores in "
            "[0, 1]: nearly every detection counts as confident; set them for this detector's score range")


class Tracker:
    """Multi-object tracker. See the module docstring for the stages.

    Args:
        config: tracker parameters; defaults when None.
        predictor: the trajectory predictor; needed (and only used) when ``config.motion_model`` is
            "learned" (``ros2_tracker.motion.create_predictor(config)`` builds it from the config);
            the constant-velocity Kalman predictor otherwise.

    Raises:
        ConfigError: motion_model is "learned" but no predictor was given.
    """

    def __init__(self, config: TrackerConfig | None = None,
                 predictor: TrajectoryPredictor | None = None) -> None:
        config = config or TrackerConfig()
        if config.motion_model == "learned" and predictor is None:
            raise ConfigError("motion_model: learned needs a predictor: build it with "
                              "ros2_tracker.motion.create_predictor(config)")
        if predictor is None or config.motion_model != "learned":
            predictor = ConstantVelocityPredictor()
        self._predictor: TrajectoryPredictor = predictor
        self._learned = config.motion_model == "learned"
        self._noise_estimate = NoiseEstimate()  # adaptive_measurement_noise (reset by reset())
        self._common_motion = CommonMotion()  # camera_motion_gain (reset by reset())
        self.set_config(config)
        self.dropped_detections = 0  # invalid boxes (NaN, inf, non-positive size) seen so far
        self.excess_detections = 0  # valid boxes beyond max_detections in a frame, not tracked
        self._kept: np.ndarray | None = None  # this frame's input rows in use, None when all of them
        self._next_id = 1
        self._multi_class = False
        self._feat_ok: np.ndarray = np.empty(0, dtype=bool)  # this frame's detections with a usable embedding
        self.reset()

    def set_config(self, config: TrackerConfig) -> None:
        """Swap parameters at run time (e.g. a ROS parameter change); live tracks are kept."""
        if not isinstance(config, TrackerConfig):
            raise TypeError(f"expected TrackerConfig, got {type(config).__name__}")
        self.config = config
        self._noise = self._current_noise()  # an adapted measurement noise carries over
        self._penalty_of_state = np.zeros(3)  # extra matching cost by TrackState (lost_match_penalty)
        self._penalty_of_state[_LOST] = config.lost_match_penalty
        self._joint_low = config.low_score_association == "joint"
        h = config.ground_homography
        self._homography = np.asarray(h, dtype=np.float64).reshape(3, 3) if h else None

    # ------------------------------------------------------------------ public API
    def reset(self) -> None:
        """Drop every track and the clock (ids keep counting up, so none is ever reused)."""
        self._stamp: float | None = None
        self._dt = 0.0  # time step of the last update [s]
        self._common_motion.reset()
        self._camera_weight = 0.0  # camera_motion_weight
        self._updates = 0  # updates since the last reset
        self._classes_seen = False  # whether a detection of a class other than 0 came since the reset
        self._ids = np.empty(0, dtype=np.int64)
        self._cls = np.empty(0, dtype=np.int64)
        self._state = np.empty(0, dtype=np.int8)
        self._mean = np.empty((0, 8))
        self._cov = np.empty((0, 4, 3))
        self._score = np.empty(0)
        self._hits = np.empty(0, dtype=np.int64)
        self._born = np.empty(0)
        self._last = np.empty(0)
        self._det = np.empty(0, dtype=np.int64)
        self._missed_tentative = np.empty(0, dtype=bool)  # set by _correct for _retire
        self._emb = np.empty((0, 0), dtype=np.float32)  # (N, E) unit embeddings; E = 0 until features come
        self._has_emb = np.empty(0, dtype=bool)
        k = self.config.history_frames  # box history: ring buffers, column = updates % k (k = 0: none)
        self._hist = np.zeros((0, k, 4))
        self._hist_ok = np.zeros((0, k), dtype=bool)
        self._hist_t = np.full(k, -np.inf)
        self._noise_estimate.reset()
        self._noise = self._current_noise()

    @property
    def measurement_noise(self) -> float:
        """The measurement noise in use [fraction of box height]: ``measurement_noise``, or with
        ``adaptive_measurement_noise`` the estimate from this sequence's detections so far."""
        return self._noise.measurement

    @property
    def camera_motion_weight(self) -> float:
        """The share of ``camera_motion_gain`` the last update applied (the larger of its two axes): 1 while
        ``camera_motion_gate`` is open, else the weight of the common motion against its noise, 0 when
        none was applied."""
        return self._camera_weight

    @property
    def camera_motion_applied(self) -> bool:
        """Whether the last update moved the tracks by at least half of ``camera_motion_gain``: its gate
        was open, or the tracks' common motion stood at least as far out of its noise as the noise itself."""
        return self._camera_weight >= 0.5

    @property
    def stamp(self) -> float | None:
        """Stamp of the last update [s], None before the first."""
        return self._stamp

    @property
    def _now(self) -> float:
        """Stamp of the last update [s], 0 before the first (the stages run after the stamp is set)."""
        return 0.0 if self._stamp is None else self._stamp

    def __len__(self) -> int:
        return len(self._ids)

    def update(self, boxes_xyxy: np.ndarray, scores: np.ndarray | None = None,
               classes: np.ndarray | None = None, *, stamp: float,
               features: np.ndarray | None = None) -> TrackSet:
        """Advance to ``stamp`` and associate this frame's detections.

        Args:
            boxes_xyxy: (D, 4) detection boxes [px]; invalid rows (NaN, inf, width or height <= 0)
                are dropped and counted in ``dropped_detections``; beyond ``max_detections`` valid
                rows only the highest-scoring are used, the rest counted in ``excess_detections``.
            scores: (D,) detection scores; 1.0 when None.
            classes: (D,) integer class ids; 0 when None.
            stamp: time of the frame [s]; must not be earlier than the previous one.
            features: optional (D, E) appearance embeddings of the detections (any scale; they are
                L2-normalised). With them, confident matches fuse IoU with cosine distance and lost
                tracks can be re-identified by appearance for ``reid_max_age_s``.

        Returns:
            Every live track (tentative, confirmed, lost); see :class:`TrackSet`.

        Raises:
            StampError: ``stamp`` is earlier than the previous update's.
            ValueError: arrays of inconsistent shapes.
        """
        # every check comes before any state changes: an update that raises changes nothing
        stamp, dt = self._time_step(stamp)
        boxes, det_scores, det_cls, feats = self._prepare(boxes_xyxy, scores, classes, features)
        if not self._classes_seen and classes is not None and np.count_nonzero(det_cls):
            self._classes_seen = True  # a class other than 0 has come since the last reset
        self._multi_class = self.config.class_aware and self._classes_seen
        self._stamp, self._dt = stamp, dt
        self._updates += 1
        self._remember_boxes(_NO_INDEX, _NO_BOXES)  # this update's history column: empty, stamped now
        self._camera_weight = 0.0
        self._expire()
        self._predict(dt)
        cfg = self.config
        high, low = self._split_by_score(det_scores)
        track_boxes = cxcywh_to_xyxy(self._mean[:, :4])
        # one IoU matrix of every track with every detection, shared by the IoU stages (dense frames only)
        iou = iou_matrix(track_boxes, boxes) if len(track_boxes) * len(boxes) <= _DENSE_LIMIT else None
        joint_low = low if self._joint_low else _NO_INDEX
        matches, high = self._associate_confident(track_boxes, boxes, det_cls, high, feats, iou, joint_low)
        if cfg.motion_gate > 0 and len(high):
            m_dist, high = self._associate_by_motion(boxes, det_cls, high, matches)
            matches = np.concatenate([matches, m_dist])
        if feats is not None and len(high):
            m_reid, high = self._associate_by_appearance(boxes, det_cls, high, matches, feats)
            matches = np.concatenate([matches, m_reid])
        m_low = _NO_PAIRS if self._joint_low else self._associate_low_score(track_boxes, boxes, det_cls,
                                                                             low, matches, iou)
        m_tent, high = self._associate_tentative(track_boxes, boxes, det_cls, high, iou)
        if len(m_low) or len(m_tent):
            matches = np.concatenate([matches, m_low, m_tent])
        z = self._correct(matches, boxes, det_scores)
        self._remember_boxes(matches[:, 0], z)
        if feats is not None:
            self._remember_appearance(matches, boxes, det_scores, feats)
        self._retire()
        self._spawn(boxes, det_scores, det_cls, high, feats)
        return self.tracks()

    def _split_by_score(self, det_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices of confident and of low-score (but usable) detections."""
        cfg = self.config
        is_high = det_scores >= cfg.high_score
        if np.count_nonzero(is_high) == len(det_scores):  # the common case: all confident
            return np.arange(len(det_scores)), _NO_INDEX
        return is_high.nonzero()[0], ((det_scores >= cfg.low_score) & ~is_high).nonzero()[0]

    def tracks(self) -> TrackSet:
        """The live tracks as of the last update (arrays shared with the tracker, never modified)."""
        now = self._now
        if self._emb.shape[1] and self._has_emb.any():
            dormant = self._dormant()
            if dormant.any():  # kept only for re-identification, not reported
                return self._tracks_now(now).select(~dormant)
        return self._tracks_now(now)

    def _tracks_now(self, now: float) -> TrackSet:
        return TrackSet(
            ids=self._ids,
            boxes_xyxy=cxcywh_to_xyxy(self._mean[:, :4]),
            scores=self._score,
            classes=self._cls,
            states=self._state,
            velocities=self._mean[:, 4:],
            box_variances=self._cov[:, :, 0],
            hits=self._hits,
            ages_s=now - self._born,
            time_since_update_s=now - self._last,
            det_indices=self._det,
        )

    def predict_trajectories(self, horizon_s: float | None = None,
                             step_s: float | None = None) -> Trajectories:
        """Future centres of the tracks :meth:`tracks` reports (same order), ``step_s`` apart up to
        ``horizon_s`` (config defaults)."""
        horizon = self.config.trajectory_horizon_s if horizon_s is None else horizon_s
        step = self.config.trajectory_step_s if step_s is None else step_s
        if not (math.isfinite(step) and math.isfinite(horizon) and step > 0 and horizon >= 0):
            raise ValueError(f"trajectory step must be finite and > 0, horizon finite and >= 0, got step "
                             f"{step!r}, horizon {horizon!r}")
        check_trajectory_sampling(horizon, step)  # at most MAX_TRAJECTORY_POINTS (a ConfigError)
        times = np.arange(1, math.floor(horizon / step + 1e-9) + 1) * step
        # the default constant-velocity predictor reads the Kalman state only: skip copying the history
        history, ids = self.motion_history(with_boxes=self._learned), self._ids
        if self._emb.shape[1] and self._has_emb.any():
            shown = ~self._dormant()  # the same tracks as tracks() reports, in the same order
            history, ids = history.select(shown), ids[shown]
        centres, covariances = self._predictor.predict(history, times)
        return Trajectories(ids.copy(), times, centres, covariances)

    def motion_history(self, with_boxes: bool = True) -> MotionHistory:
        """Every track's recent measured boxes, oldest first, with the Kalman state at the last stamp
        (``with_boxes=False``, or no history kept: see ``motion_history_frames``: the state only, with
        empty (N, 0) history arrays)."""
        now = self._now
        n = len(self._ids)
        if not with_boxes or not len(self._hist_t):
            return MotionHistory(np.empty((n, 0, 4)), np.empty((n, 0), dtype=bool), np.empty((n, 0)), now,
                                 self._mean, self._cov, self._noise)
        k = self._hist_t.shape[0]
        order = (np.arange(k) + self._updates) % k  # oldest column first
        stamps = np.broadcast_to(self._hist_t[order], (n, k))
        return MotionHistory(self._hist[:, order], self._hist_ok[:, order], stamps, now, self._mean,
                             self._cov, self._noise)

    def _remember_boxes(self, rows: np.ndarray, boxes_cxcywh: np.ndarray) -> None:
        """Write this update's measured boxes of the matched track ``rows`` into the history ring buffer
        (its column, cleared first: until the matches are written, e.g. while the learned predictor places
        lost tracks, the history ends with an empty column at this stamp, not the one K updates ago)."""
        if not len(self._hist_t):
            return
        push_history(self._hist, self._hist_ok, self._hist_t, (self._updates - 1) % self._hist_t.shape[0],
                     rows, boxes_cxcywh, self._now)

    def apply_camera_motion(self, warp: np.ndarray,
                            local: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> int:
        """Move every track by the camera's image motion since the last update, before the next
        :meth:`update`: a (2, 3) affine warp (e.g. from ``ros2_tracker.cmc.EccAligner.estimate``) or a
        (3, 3) homography (e.g. a turning camera's, ``ros2_tracker.cmc.gyro.rotation_homography``), which
        each track takes linearised at its own centre (:func:`~ros2_tracker.core.kalman.local_affines`).
        A track the homography turns 90 degrees or more off the camera's axis (a lost one coasting far
        outside the image) has no place in the image any more and is dropped.

        Args:
            warp: (2, 3) or (3, 3), mapping the previous frame's pixels to the next frame's.
            local: with a homography, ``local(homography, centres)`` -> (N, 2, 3) the warps of the tracks'
                (N, 2) centres, for pixels the homography does not map alone (a lens's: e.g.
                ``ros2_tracker.io.camera_model.CameraModel.warp_affines``); NaN rows: no place in the image.

        Returns:
            The number of tracks dropped (0 for a (2, 3) warp).

        Raises:
            ValueError: not a finite (2, 3) or (3, 3) matrix, or one that scales a track's area by less than
                1e-6 or more than 1e6 (it would collapse every box to a point, or blow them up: no camera
                moves so between two frames).
        """
        warp = np.asarray(warp, dtype=np.float64)
        if warp.shape not in ((2, 3), (3, 3)) or not np.isfinite(warp).all():
            got = f"shape {warp.shape}" if warp.shape not in ((2, 3), (3, 3)) else "NaN or inf entries"
            raise ValueError(f"the warp must be a finite (2, 3) or (3, 3) matrix, got {got}")
        if warp.shape == (3, 3):
            centres = self._mean[:, :2]
            if local is None:
                warp = kalman.local_affines(warp, centres)
            else:
                warp = np.asarray(local(warp, centres.copy()), dtype=np.float64)
                if warp.shape != (len(centres), 2, 3):
                    raise ValueError(f"local gave warps of shape {warp.shape} for {len(centres)} tracks")
        a = warp[..., :2]
        area = np.abs(a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0])
        gone = np.isnan(area)  # turned out of the image's reach (homography only)
        area = area[~gone]
        if not ((_MIN_WARP_AREA <= area) & (area <= 1.0 / _MIN_WARP_AREA)).all():
            raise ValueError(f"the warp scales areas by {float(np.min(area)):g} to {float(np.max(area)):g}: "
                             "not a camera motion between two frames")
        dropped = int(np.count_nonzero(gone))
        if dropped:
            kept = (~gone).nonzero()[0]
            self._keep(kept)
            warp = warp[kept]
        if len(self._ids):
            self._mean, self._cov = kalman.warp_affine(self._mean, self._cov, warp)
            if len(self._hist_t):
                self._hist = warp_history(self._hist, warp)  # the motion model reads it in today's pixels
        return dropped

    def forget_appearance(self) -> None:
        """Drop every track's appearance memory (e.g. after switching to another embedding model whose
        embeddings are not comparable); tracks and ids are kept, new memories start from the next match.
        Lost tracks past ``max_lost_s``, kept only for re-identification by appearance, are removed: nothing
        could bring them back."""
        if len(self._ids):
            dormant = self._dormant()
            if dormant.any():
                self._keep((~dormant).nonzero()[0])
        self._emb = np.zeros_like(self._emb)
        self._has_emb = np.zeros_like(self._has_emb)

    # ------------------------------------------------------------------ stages
    def _prepare(self, boxes_xyxy: ArrayLike, scores: ArrayLike | None, classes: ArrayLike | None,
                 features: ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """The detections in use as arrays; raises ValueError before changing any state."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            if boxes.ndim != 1 or boxes.size not in (0, 4):  # [] and one box (4,) are fine
                raise ValueError(f"boxes_xyxy: expected shape (D, 4), got {boxes.shape}")
            boxes = boxes.reshape(-1, 4)
        n = len(boxes)
        det_scores = _filled(n, 1.0) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        det_cls = np.zeros(n, dtype=np.int64) if classes is None else _class_ids(classes)
        feats = None if features is None else np.asarray(features, dtype=np.float32)
        bad_feats = feats is not None and (feats.ndim != 2 or len(feats) != n)
        if len(det_scores) != n or len(det_cls) != n or bad_feats:
            raise ValueError(f"boxes ({n}), scores ({len(det_scores)}), classes ({len(det_cls)}) and "
                             f"features ({None if feats is None else feats.shape}) must have the same length")
        if feats is not None:
            self._check_features(feats)
        ok = valid_box_mask(boxes, det_scores)
        n_ok = int(np.count_nonzero(ok))
        kept = None  # the input rows in use, when not all of them
        if n_ok != n:  # rare: the common all-valid frame costs only the mask
            self.dropped_detections += n - n_ok
            kept = ok.nonzero()[0]
        cap = self.config.max_detections
        if n_ok > cap:  # rarer still: a detector without non-maximum suppression?
            rows = np.arange(n) if kept is None else kept
            kept = rows.take(strongest(det_scores.take(rows), cap))
            self.excess_detections += n_ok - cap
        if kept is not None:
            boxes, det_scores, det_cls = boxes.take(kept, axis=0), det_scores.take(kept), det_cls.take(kept)
            feats = None if feats is None else feats.take(kept, axis=0)
        self._kept = kept  # det_indices name input rows
        if feats is not None:
            feats = self._embedding_rows(appearance.normalise(feats))
            self._feat_ok = feats.any(axis=1)  # type: ignore[assignment]  # (D,) bools: all-zero rows have no appearance
        return boxes, det_scores, det_cls, feats

    def _check_features(self, feats: np.ndarray) -> None:
        """Raise ValueError for embeddings of another size than the tracks' (checked before any change)."""
        dim = self._emb.shape[1]
        if dim and feats.shape[1] != dim and not (len(feats) == 0 and feats.shape[1] == 0):
            raise ValueError(f"features have {feats.shape[1]} dimensions, the tracks' embeddings {dim}; "
                             "call reset() after changing the embedding model")

    def _embedding_rows(self, feats: np.ndarray) -> np.ndarray:
        """Checked embeddings as rows for the tracks' memory, which the first ones size."""
        dim = self._emb.shape[1]
        if len(feats) == 0 and feats.shape[1] in (0, dim):
            return np.zeros((0, dim), dtype=np.float32)
        if dim == 0:
            self._emb = np.zeros((len(self._ids), feats.shape[1]), dtype=np.float32)
            self._has_emb = np.zeros(len(self._ids), dtype=bool)
        return feats

    def _time_step(self, stamp: float) -> tuple[float, float]:
        """``(stamp, time step since the last update)``; StampError for a stamp that is not finite or goes
        back (the clock itself moves only once the update is accepted)."""
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise StampError(f"stamp must be finite, got {stamp}")
        if self._stamp is None:
            return stamp, 0.0
        # to the nanosecond (ROS stamps' resolution): stamps computed as frame / fps jitter in their last
        # bits, and the Kalman filter's per-dt matrices are cached by value
        dt = round(stamp - self._stamp, 9)
        if dt < 0:
            raise StampError(f"stamp {stamp:.6f} s is earlier than the previous {self._stamp:.6f} s")
        return stamp, dt

    def _predict(self, dt: float) -> None:
        if dt > 0 and len(self._ids):
            self._mean, self._cov = kalman.predict(self._mean, self._cov, dt, self._noise)

    def _associate_confident(self, track_boxes: np.ndarray, boxes: np.ndarray, det_cls: np.ndarray,
                             high: np.ndarray, feats: np.ndarray | None = None, iou: np.ndarray | None = None,
                             low: np.ndarray = _NO_INDEX) -> _Matched:
        """Confirmed and lost tracks vs confident detections, and vs the low-score detections ``low``
        (confirmed tracks only, at ``low_score_match_iou``; ``low_score_association: joint``); returns
        the matches and the confident detections left over."""
        rows = (self._state != _TENT).nonzero()[0]
        if len(rows) and self._emb.shape[1] and self._has_emb.any():
            rows = rows[~self._dormant()[rows]]
        if not len(rows) or not (len(high) or len(low)):
            return _NO_PAIRS, high
        tb = track_boxes if len(rows) == len(track_boxes) else track_boxes.take(rows, axis=0)
        if self._learned and self.config.learned_lost_boxes:
            moved = self._learned_lost_boxes(rows, tb)
            iou = iou if moved is tb else None  # the shared IoU is of the Kalman boxes
            tb = moved
        cfg = self.config
        row_state = self._state.take(rows)
        if cfg.lost_box_growth > 0:
            lost = row_state == _LOST
            if lost.any():
                pad = cfg.lost_box_growth * np.sqrt(self._cov[rows[lost], :2, 0])
                tb = tb.copy()
                tb[lost, :2] -= pad
                tb[lost, 2:] += pad
                iou = None  # the shared IoU is of the unwidened boxes
        # lost tracks pay lost_match_penalty where they compete with others (applied by the assignment)
        penalty = self._penalty_of_state.take(row_state) if cfg.lost_match_penalty else None
        cols, weak = high, None
        if len(low):  # only confirmed rows may take a low-score detection
            is_low = np.zeros(len(boxes), dtype=bool)
            is_low[low] = True
            cols = np.sort(np.concatenate([high, low]))  # ascending, as every stage's columns
            weak = (is_low.take(cols), row_state == _CONF)
        if feats is None:
            m, left = self._match(rows, tb, boxes, det_cls, cols, cfg.match_iou, iou, penalty, weak)
        else:
            m, left = self._match_fused(rows, tb, boxes, det_cls, cols, feats, iou, penalty, weak)
        return m, (left if weak is None else left[~is_low.take(left)])

    def _learned_lost_boxes(self, rows: np.ndarray, row_boxes: np.ndarray) -> np.ndarray:
        """Lost tracks' boxes (of ``rows``) moved to the learned predictor's centre now (size kept)."""
        sel = self._state[rows] == _LOST
        if not sel.any():
            return row_boxes
        centres, _ = self._predictor.predict(self.motion_history().select(rows[sel]), np.zeros(1))
        out = row_boxes.copy()
        half = 0.5 * (out[sel, 2:] - out[sel, :2])
        out[sel, :2] = centres[:, 0] - half
        out[sel, 2:] = centres[:, 0] + half
        return out

    def _match_fused(self, rows: np.ndarray, row_boxes: np.ndarray, boxes: np.ndarray, det_cls: np.ndarray,
                     cols: np.ndarray, feats: np.ndarray, iou: np.ndarray | None = None,
                     penalty: np.ndarray | None = None, weak: _Weak | None = None) -> _Matched:
        """IoU-gated matching on (1 - w) * (1 - IoU) + w * cosine distance; appearance vetoes pairs
        beyond ``appearance_threshold`` (tracks without an embedding yet are judged by IoU alone).
        ``penalty``: the rows' extra cost where they compete (see ``assign_ids``), or None. ``weak``:
        see :meth:`_match`; a low-score detection's appearance (often occluded) counts as neutral.
        Gates as :meth:`_match` (IoU, classes, ground distance); crowded frames (more than
        ``_DENSE_LIMIT`` pairs) cost only the pairs whose boxes can overlap, as there."""
        cfg = self.config
        col_boxes = boxes if len(cols) == len(boxes) else boxes.take(cols, axis=0)
        sparse = len(rows) * len(cols) > _DENSE_LIMIT
        at_row: np.ndarray | tuple[slice, None]
        at_col: np.ndarray | slice
        if sparse:
            r, c = overlapping_pairs(row_boxes, col_boxes)
            iou_cost = 1.0 - iou_pairs(row_boxes, col_boxes, r, c)
            app = appearance.cosine_distance_pairs(self._emb[rows[r]], feats[cols[c]])
            at_row, at_col = r, c  # index each per-row / per-column array by the pairs
        else:
            iou_cost = 1.0 - (iou_matrix(row_boxes, col_boxes) if iou is None
                              else _submatrix(iou, rows, cols))
            app = appearance.cosine_distance(self._emb[rows], feats[cols])
            at_row, at_col = (slice(None), None), slice(None)  # (rows, 1) against (cols,): the matrix
        # neutral where either side has no appearance (no memory yet, or a detection without a crop)
        no_app = (~self._has_emb[rows])[at_row] | (~self._feat_ok[cols])[at_col]
        if weak is not None:
            no_app = no_app | weak[0][at_col]
        app = np.where(no_app, 0.5 * cfg.appearance_threshold, app)
        w = cfg.appearance_weight
        cost = (1.0 - w) * iou_cost + w * app
        # as strict as _match's IoU gate (cost < 1 - match_iou): boxes that do not overlap never match
        cost[(iou_cost >= 1.0 - cfg.match_iou) | (app > cfg.appearance_threshold)] = np.inf
        if weak is not None:
            self._gate_weak(cost, iou_cost, weak[0][at_col], weak[1][at_row])
        if self._multi_class:
            cost[self._cls[rows][at_row] != det_cls[cols][at_col]] = np.inf
        if self._homography is not None:
            self._gate_ground(cost, row_boxes, col_boxes, (r, c) if sparse else None)
        threshold = (1.0 - w) * (1.0 - cfg.match_iou) + w * cfg.appearance_threshold + 1e-9
        if sparse:
            return ids_of(assign_sparse(len(rows), len(cols), r, c, cost, threshold, penalty), rows, cols)
        return assign_ids(cost, threshold, rows, cols, penalty)

    def _associate_by_motion(self, boxes: np.ndarray, det_cls: np.ndarray, high: np.ndarray,
                             matches: np.ndarray) -> _Matched:
        """Confirmed/lost tracks left after IoU vs confident detections left, by Mahalanobis distance."""
        free = self._state != _TENT
        if self._has_emb.any():
            free &= ~self._dormant()
        free[matches[:, 0]] = False
        rows = free.nonzero()[0]
        if not len(rows):
            return _NO_PAIRS, high
        z = xyxy_to_cxcywh(boxes[high])
        cost = kalman.mahalanobis_sq(self._mean[rows], self._cov[rows], z,
                                     kalman.measurement_var(z, self._noise))
        if self._multi_class:
            gate_classes(cost, self._cls[rows], det_cls[high])
        if self._homography is not None:  # max_ground_distance_m holds in every stage
            self._gate_ground(cost, cxcywh_to_xyxy(self._mean[rows, :4]), boxes[high])
        return assign_ids(cost, self.config.motion_gate, rows, high)

    def _associate_by_appearance(self, boxes: np.ndarray, det_cls: np.ndarray, high: np.ndarray,
                                 matches: np.ndarray, feats: np.ndarray) -> _Matched:
        """Re-identification: lost tracks (dormant ones included) vs confident detections left over,
        by cosine distance. Only recently lost tracks near their predicted position may use
        appearance_threshold; far away, or once dormant, the stricter reid_threshold applies."""
        cfg = self.config
        free = (self._state == _LOST) & self._has_emb
        free[matches[:, 0]] = False
        rows = free.nonzero()[0]
        if not len(rows):
            return _NO_PAIRS, high
        cost = appearance.cosine_distance(self._emb[rows], feats[high])
        z = xyxy_to_cxcywh(boxes[high])
        near = kalman.mahalanobis_sq(self._mean[rows], self._cov[rows], z,
                                     kalman.measurement_var(z, self._noise), dims=2) <= _CHI2_99_2DOF
        near &= ~self._dormant()[rows][:, None]
        cost[~near & (cost > cfg.reid_threshold)] = np.inf
        cost[:, ~self._feat_ok[high]] = np.inf
        if self._multi_class:
            gate_classes(cost, self._cls[rows], det_cls[high])
        return assign_ids(cost, cfg.appearance_threshold + 1e-9, rows, high)

    def _remember_appearance(self, matches: np.ndarray, boxes: np.ndarray, det_scores: np.ndarray,
                             feats: np.ndarray) -> None:
        """Moving-average embedding update from confident, unoccluded detections only."""
        t, d = matches[:, 0], matches[:, 1]
        fresh = ~self._has_emb[t]
        ok = fresh | ((det_scores[d] >= self.config.high_score)
                      & appearance.unoccluded(boxes, self.config.embedding_max_overlap)[d])
        ok &= self._feat_ok[d]  # a detection without a usable crop teaches nothing
        t, d, fresh = t[ok], d[ok], fresh[ok]
        if not len(t):
            return
        emb = self._emb.copy()
        mom = np.where(fresh, 0.0, self.config.embedding_momentum)[:, None]
        emb[t] = appearance.normalise(mom * emb[t] + (1.0 - mom) * feats[d])
        has = self._has_emb.copy()
        has[t] = True
        self._emb, self._has_emb = emb, has

    def _dormant(self) -> np.ndarray:
        """Lost tracks past max_lost_s, kept only for re-identification by appearance."""
        return (self._state == _LOST) & (self._now - self._last > self.config.max_lost_s)

    def _associate_low_score(self, track_boxes: np.ndarray, boxes: np.ndarray, det_cls: np.ndarray,
                             low: np.ndarray, matches: np.ndarray,
                             iou: np.ndarray | None = None) -> np.ndarray:
        """Confirmed tracks not matched yet vs low-score detections."""
        if not len(low):
            return _NO_PAIRS
        free = self._state == _CONF
        free[matches[:, 0]] = False
        rows = free.nonzero()[0]
        if not len(rows):
            return _NO_PAIRS
        m, _ = self._match(rows, track_boxes[rows], boxes, det_cls, low, self.config.low_score_match_iou, iou)
        return m

    def _associate_tentative(self, track_boxes: np.ndarray, boxes: np.ndarray, det_cls: np.ndarray,
                             high: np.ndarray, iou: np.ndarray | None = None) -> _Matched:
        """Tentative tracks vs the confident detections left over."""
        if not len(high):
            return _NO_PAIRS, high
        rows = (self._state == _TENT).nonzero()[0]
        if not len(rows):
            return _NO_PAIRS, high
        return self._match(rows, track_boxes.take(rows, axis=0), boxes, det_cls, high,
                           self.config.tentative_match_iou, iou)

    def _match(self, rows: np.ndarray, row_boxes: np.ndarray, boxes: np.ndarray, det_cls: np.ndarray,
               cols: np.ndarray, min_iou: float, iou: np.ndarray | None = None,
               penalty: np.ndarray | None = None, weak: _Weak | None = None) -> _Matched:
        """IoU matching of track ``rows`` to detection ``cols``; returns (track, det) index pairs
        and the detection indices left unmatched. ``iou``: the frame's (tracks, detections) IoU matrix
        when it was computed (else the pairs' IoU is computed here). ``penalty``: the rows' extra cost
        where they compete for a detection (see ``assign_ids``), or None. ``weak``: (low_col, allowed)
        when the columns with ``low_col`` are low-score detections, which only rows with ``allowed`` may
        take, at ``low_score_match_iou``; or None."""
        col_boxes = boxes if len(cols) == len(boxes) else boxes.take(cols, axis=0)
        if len(rows) * len(cols) > _DENSE_LIMIT:
            return self._match_sparse(rows, row_boxes, col_boxes, det_cls, cols, min_iou, penalty, weak)
        cost = 1.0 - (iou_matrix(row_boxes, col_boxes) if iou is None else _submatrix(iou, rows, cols))
        if weak is not None:
            self._gate_weak(cost, cost, weak[0], weak[1][:, None])
        if self._multi_class:
            gate_classes(cost, self._cls[rows], det_cls[cols])
        if self._homography is not None:
            self._gate_ground(cost, row_boxes, col_boxes)
        return assign_ids(cost, 1.0 - min_iou, rows, cols, penalty)

    def _match_sparse(self, rows: np.ndarray, row_boxes: np.ndarray, col_boxes: np.ndarray,
                      det_cls: np.ndarray, cols: np.ndarray, min_iou: float,
                      penalty: np.ndarray | None = None, weak: _Weak | None = None) -> _Matched:
        """Crowded frames: IoU only for pairs whose boxes can overlap (sort and sweep), sparse assignment."""
        r, c = overlapping_pairs(row_boxes, col_boxes)
        cost = 1.0 - iou_pairs(row_boxes, col_boxes, r, c)
        if weak is not None:
            self._gate_weak(cost, cost, weak[0][c], weak[1][r])
        if self._multi_class:
            cost[self._cls[rows][r] != det_cls[cols][c]] = np.inf
        if self._homography is not None:
            self._gate_ground(cost, row_boxes, col_boxes, (r, c))
        return ids_of(assign_sparse(len(rows), len(cols), r, c, cost, 1.0 - min_iou, penalty), rows, cols)

    def _gate_ground(self, cost: np.ndarray, row_boxes: np.ndarray, col_boxes: np.ndarray,
                     pairs: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Forbid (in place) pairs whose foot points lie more than ``max_ground_distance_m`` apart on the
        ground (needs the homography): a dense cost matrix, or with ``pairs`` (rows, columns) the sparse
        path's pair costs."""
        homography = self._homography
        if homography is None:  # no ground plane configured: nothing to gate
            return
        far = (ground_distance(row_boxes, col_boxes, homography) if pairs is None else
               ground_distance_pairs(row_boxes[pairs[0]], col_boxes[pairs[1]], homography))
        cost[far > self.config.max_ground_distance_m] = np.inf

    def _gate_weak(self, cost: np.ndarray, iou_cost: np.ndarray, low: np.ndarray,
                   allowed: np.ndarray) -> None:
        """Forbid (in place) low-score detections (``low``) to tracks not ``allowed``, and wherever their
        IoU is below ``low_score_match_iou``. The masks broadcast to ``cost``: a (columns,) and a (rows, 1)
        mask for a dense matrix, one entry per pair for the sparse path's pair costs."""
        bad = (iou_cost >= 1.0 - self.config.low_score_match_iou) | ~allowed
        bad &= low
        cost[bad] = np.inf

    def _correct(self, matches: np.ndarray, boxes: np.ndarray, det_scores: np.ndarray) -> np.ndarray:
        """Kalman update of matched tracks and the lifecycle of all tracks; returns the matched
        detections' boxes (cx, cy, w, h), in the order of ``matches``.

        Arrays are replaced, never modified in place, so a returned :class:`TrackSet` can share them.
        (Gathers use ``take``: on a frame's few dozen rows it costs a fraction of fancy indexing.)
        """
        cfg = self.config
        t, d = matches[:, 0], matches[:, 1]
        det = _filled(len(self._ids), -1, np.int64)
        det[t] = d if self._kept is None else self._kept.take(d)  # as rows of the caller's input
        self._det = det
        matched = det >= 0
        if len(t):
            z = xyxy_to_cxcywh(boxes.take(d, axis=0))
            mean, cov = self._mean.copy(), self._cov.copy()
            prior = mean.take(t, axis=0)
            if cfg.camera_motion_gain > 0 and self._dt > 0 and self._follow_image_motion(mean, prior, t, z):
                prior = mean.take(t, axis=0)
            if cfg.adaptive_measurement_noise:
                self._adapt_measurement_noise(prior, z)
            var = kalman.measurement_var(z, self._noise)
            mean[t], cov[t] = kalman.update(prior, cov.take(t, axis=0), z, var, cfg.robust_update_sigma)
            self._mean, self._cov = mean, cov
            score, last = self._score.copy(), self._last.copy()
            score[t] = det_scores.take(d)
            last[t] = self._stamp
            self._score, self._hits, self._last = score, self._hits + matched, last
        else:
            z = np.empty((0, 4))
        # Tentative tracks are removed at their first miss, so their hits are consecutive hits. The next
        # state is a table lookup on (state, matched, enough hits).
        key = self._state * 4 + matched * 2 + (self._hits >= cfg.min_hits)
        self._state = _NEXT_STATE.take(key)
        self._missed_tentative = _MISSED_TENTATIVE.take(key)  # retired by _retire
        return z

    def _follow_image_motion(self, mean: np.ndarray, prior: np.ndarray, t: np.ndarray,
                             z: np.ndarray) -> bool:
        """Move every track (``mean``, in place; returns whether it did) by a share of the image motion the
        matched tracks ``t`` (predicted states ``prior``, measured boxes ``z``) agree on: the median of
        their centre innovations, counted over confirmed tracks with at least ``_COMMON_MOTION_MIN_HITS``
        hits (a settled velocity), when there are ``_COMMON_MOTION_MIN_TRACKS`` of them; velocities get the
        same share per second. One person's manoeuvre moves the median little; a panning camera moves every
        innovation alike. The share is ``camera_motion_gain`` while ``camera_motion_gate`` is open, else
        that times the weight of the median against its noise
        (:class:`~ros2_tracker.core.adaptation.CommonMotion`).
        The velocity share is per the larger of this time step and half the typical one, so a message a
        microsecond after the last cannot turn a pixel of innovation into a huge velocity."""
        dt = self._dt
        motion = self._common_motion
        motion.step(dt)
        if len(t) < _COMMON_MOTION_MIN_TRACKS:
            return False
        settled = self._hits.take(t) >= _COMMON_MOTION_MIN_HITS
        settled &= self._state.take(t) == _CONF
        n = int(np.count_nonzero(settled))
        if n < _COMMON_MOTION_MIN_TRACKS:
            return False
        innovations = z[:, :2] - prior[:, :2]
        if n < len(t):
            innovations = innovations.compress(settled, axis=0)
        common = motion.shift(innovations, dt, self._updates, self.config.camera_motion_gate)
        if common is None:
            return False
        x, y, wx, wy = common
        self._camera_weight = max(wx, wy)
        gain = self.config.camera_motion_gain
        sx, sy = gain * wx * x, gain * wy * y
        step = motion.velocity_step(dt)
        mean[:, :6] += (sx, sy, 0.0, 0.0, sx / step, sy / step)
        return True

    def _adapt_measurement_noise(self, prior: np.ndarray, z: np.ndarray) -> None:
        """Fold this frame's height innovations (matched tracks' predicted states ``prior``, measured boxes
        ``z``) into the detector's noise estimate and use it, between ``min_measurement_noise`` and
        ``measurement_noise``. Heights: the coordinate that neither the people's nor the camera's motion
        moves much, so its innovation is mostly the detector's. Every match counts: a recovered lost
        track's larger innovation only errs towards more smoothing. Once the estimate has settled, only
        every eighth update adds to it (:meth:`~ros2_tracker.core.adaptation.NoiseEstimate.wants`)."""
        estimate = self._noise_estimate
        if not estimate.wants(self._updates):
            return
        h = prior[:, 3]  # > 0: predicted and updated heights stay positive
        rel = np.abs(z[:, 3] - h)
        rel /= h
        estimate.add(rel)
        std = self._estimated_noise()
        if std != self._noise.measurement:
            self._noise = self._noise._replace(measurement=std)

    def _estimated_noise(self) -> float:
        """The detector's box noise estimated from the innovations so far, between ``min_measurement_noise``
        and ``measurement_noise`` (which is also its prior)."""
        cfg = self.config
        return self._noise_estimate.estimate(cfg.measurement_noise, cfg.min_measurement_noise)

    def _current_noise(self) -> kalman.MotionNoise:
        """The configured noise levels, with the estimated measurement noise where it adapts."""
        noise = self.config.noise
        if self.config.adaptive_measurement_noise:
            noise = noise._replace(measurement=self._estimated_noise())
        return noise

    def _spawn(self, boxes: np.ndarray, det_scores: np.ndarray, det_cls: np.ndarray, high: np.ndarray,
               feats: np.ndarray | None = None) -> None:
        if not len(high):  # every confident detection was matched (the common frame)
            return
        new = high.compress(det_scores.take(high) >= self.config.new_track_score)
        n = len(new)
        if not n:
            return
        z = xyxy_to_cxcywh(boxes.take(new, axis=0))
        mean, cov = kalman.initiate(z, self._noise)
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        confirm = self.config.min_hits <= 1 or (self.config.confirm_first_frame and self._updates == 1)
        state = _filled(n, _CONF if confirm else _TENT, np.int8)
        self._append(ids, det_cls[new], state, mean, cov, det_scores[new],
                     new if self._kept is None else self._kept.take(new))
        dim = self._emb.shape[1]
        if dim:  # appearance memory exists once features have come (see _embedding_rows)
            emb = feats[new] if feats is not None else np.zeros((n, dim), dtype=np.float32)
            self._emb = np.concatenate([self._emb, emb])
            has = self._feat_ok[new] if feats is not None else np.zeros(n, dtype=bool)
            self._has_emb = np.concatenate([self._has_emb, has])

    def _append(self, ids: np.ndarray, cls: np.ndarray, state: np.ndarray, mean: np.ndarray, cov: np.ndarray,
                scores: np.ndarray, det_idx: np.ndarray) -> None:
        n = len(ids)
        now = _filled(n, self._now)
        self._ids = np.concatenate([self._ids, ids])
        self._cls = np.concatenate([self._cls, cls])
        self._state = np.concatenate([self._state, state])
        self._mean = np.concatenate([self._mean, mean])
        self._cov = np.concatenate([self._cov, cov])
        self._score = np.concatenate([self._score, scores])
        self._hits = np.concatenate([self._hits, _filled(n, 1, np.int64)])
        self._born = np.concatenate([self._born, now])
        self._last = np.concatenate([self._last, now])
        self._det = np.concatenate([self._det, det_idx.astype(np.int64)])
        if not len(self._hist_t):
            return
        hist = np.zeros((n, *self._hist.shape[1:]))
        ok = np.zeros((n, self._hist_ok.shape[1]), dtype=bool)
        column = (self._updates - 1) % len(self._hist_t)
        hist[:, column], ok[:, column] = mean[:, :4], True  # the spawning detection
        self._hist = np.concatenate([self._hist, hist])
        self._hist_ok = np.concatenate([self._hist_ok, ok])

    def _expire(self) -> None:
        """Drop, before any association, the tracks last matched longer ago than they may coast (re-ID
        memory: ``reid_max_age_s``), so none is matched past its age, however long the gap since the
        last update (a stalled detector, a paused bag)."""
        cfg = self.config
        if self._emb.shape[1]:
            keep_for = np.where(self._has_emb, max(cfg.reid_max_age_s, cfg.max_lost_s), cfg.max_lost_s)
            too_old = self._now - self._last > keep_for
        else:
            too_old = self._now - self._last > cfg.max_lost_s
        if np.count_nonzero(too_old):
            self._keep((~too_old).nonzero()[0])

    def _retire(self) -> None:
        """Drop the tentative tracks this update did not match (the old ones went in :meth:`_expire`)."""
        if np.count_nonzero(self._missed_tentative):
            self._keep((~self._missed_tentative).nonzero()[0])

    def _keep(self, rows: np.ndarray) -> None:
        """Keep only the tracks at ``rows`` (ascending), dropping the others."""
        for name in self._per_track_arrays():
            setattr(self, name, getattr(self, name).take(rows, axis=0))

    def _per_track_arrays(self) -> tuple[str, ...]:
        """Attributes holding one row per track; appearance memory and box history only once they exist."""
        names: tuple[str, ...] = (
            "_ids", "_cls", "_state", "_mean", "_cov", "_score", "_hits", "_born", "_last", "_det")
        if self._emb.shape[1]:
            names += ("_emb", "_has_emb")
        if len(self._hist_t):
            names += ("_hist", "_hist_ok")
        return names
