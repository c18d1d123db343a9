"""Track lifecycle states and the read-only views of tracks that the tracker returns."""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import numpy as np

__all__ = ["TrackSet", "TrackState", "Trajectories", "reported_mask"]


class TrackState(enum.IntEnum):
    """Lifecycle: TENTATIVE -> CONFIRMED (after ``min_hits`` hits) <-> LOST -> removed.

    The values match the ``STATE_*`` constants of ``ros2_tracker/msg/Track``.
    """

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2


class TrackSet(NamedTuple):
    """All live tracks after an update, as parallel arrays (row i is one track).

    Attributes:
        ids: (N,) int64 track ids, unique over the tracker's life, never reused.
        boxes_xyxy: (N, 4) estimated boxes [px] (predicted only, for LOST tracks).
        scores: (N,) score of the last matched detection.
        classes: (N,) int64 class ids.
        states: (N,) int8 :class:`TrackState` values.
        velocities: (N, 4) d/dt of (cx, cy, w, h) [px/s].
        box_variances: (N, 4) variances of (cx, cy, w, h) [px^2].
        hits: (N,) number of detections matched over the track's life.
        ages_s: (N,) seconds since the track started.
        time_since_update_s: (N,) seconds since the last matched detection (0 when matched now).
        det_indices: (N,) index of the input detection matched this update, -1 when none.
    """

    ids: np.ndarray
    boxes_xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    states: np.ndarray
    velocities: np.ndarray
    box_variances: np.ndarray
    hits: np.ndarray
    ages_s: np.ndarray
    time_since_update_s: np.ndarray
    det_indices: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, mask: np.ndarray) -> TrackSet:
        """The tracks where ``mask`` (bool or index array) selects."""
        return TrackSet(*(a[mask] for a in self))

    def confirmed_and_updated(self) -> TrackSet:
        """Tracks to report as results: confirmed and matched to a detection in this update."""
        return self.select((self.states == TrackState.CONFIRMED) & (self.det_indices >= 0))

    def reported(self, lost_s: float = 0.0) -> TrackSet:
        """The tracks a results file reports this update (see :func:`reported_mask`)."""
        return self.select(reported_mask(self.states, self.time_since_update_s, lost_s))


def reported_mask(states: np.ndarray, time_since_update_s: np.ndarray, lost_s: float = 0.0) -> np.ndarray:
    """Which tracks a results file (MOTChallenge rows) reports: confirmed tracks matched in this update,
    and, with ``lost_s`` > 0, lost tracks whose last detection is at most ``lost_s`` seconds old (at their
    predicted box). The one rule of every results writer (``track``, ``demo``, ``replay``).

    Args:
        states: (N,) :class:`TrackState` values.
        time_since_update_s: (N,) seconds since each track's last matched detection (0 when matched in
            this update).
        lost_s: how long a lost track is still reported [s]; 0: matched tracks only.
    """
    matched = (states == TrackState.CONFIRMED) & (time_since_update_s == 0)
    if lost_s > 0:
        # a microsecond of slack: k frame intervals rarely add up exactly in floating point, and messages
        # carry the time as float32
        matched |= (states == TrackState.LOST) & (time_since_update_s <= lost_s + 1e-6)
    return matched


def _make_track_set(cls: type[TrackSet], iterable: Any) -> TrackSet:
    """``TrackSet._make``, which ``_replace`` uses, without namedtuple's check of ``len()``.

    ``len()`` of a TrackSet counts its tracks, not its fields. (typing.NamedTuple forbids defining it in the
    class.)
    """
    fields = tuple(iterable)
    if len(fields) != len(cls._fields):
        raise TypeError(f"expected {len(cls._fields)} arrays, got {len(fields)}")
    return tuple.__new__(cls, fields)


TrackSet._make = classmethod(_make_track_set)  # type: ignore[method-assign, assignment]


class Trajectories(NamedTuple):
    """Predicted future centres of tracks.

    Attributes:
        ids: (N,) track ids.
        times_s: (K,) seconds ahead of the current stamp.
        centres: (N, K, 2) predicted centre x, y [px].
        covariances: (N, K, 3) (var_x, cov_xy, var_y) [px^2].
    """

    ids: np.ndarray
    times_s: np.ndarray
    centres: np.ndarray
    covariances: np.ndarray
