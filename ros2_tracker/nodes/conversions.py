"""Pure conversions between ROS messages and the tracking core's numpy arrays.

Nothing here imports rclpy or any message package at module level: functions read messages by
attribute and build them from classes passed in (``msg_types``: any object with the message classes
as attributes, e.g. the module ``ros2_tracker.msg``), so they are unit-tested without a ROS graph.

Box formats: ``ros2_tracker/msg/Detection2D.bbox``, ``TrackArray.boxes`` and ``Track.box`` are
(centre x, centre y, width, height) [px]; the core works in ``xyxy`` (x1, y1, x2, y2) [px].

Speed: rclpy converts every nested message through Python objects, but passes a primitive array as
one buffer when it is a numpy array (fixed-size ``float32[4]``) or an ``array.array`` (unbounded
``float32[]``, ``uint64[]``, ...). ``TrackArray`` is therefore a structure of arrays (one entry per
track), built from ``array.array`` objects filled from bytes and read back with ``np.frombuffer``; a
numpy array is never assigned to an unbounded field (rclpy would copy it element by element). The
per-object ``Track`` message (single-target use, users who prefer objects) is built by filling its
slots directly, skipping the generated constructor's defaults and copies (see
:func:`_has_slot_layout`); so are ``Detection2D`` messages.

``vision_msgs/Detection2DArray`` (the ROS-standard type) is read by the same
:func:`detections_to_arrays` when the ``vision_msgs`` package is installed (it is optional: it is
not on PyPI, so the pip set-up lacks it, while a robot's ROS install usually has it). Its string
``class_id`` becomes an integer when it is one (``"0"``, ``"17"``) and -1 otherwise, and the best
hypothesis of each detection is used. A detection without any hypothesis (a detector that gives boxes
only) counts as unscored: score 1.0 and class -1, as arrays without scores do.
"""

from __future__ import annotations

import array
import functools
import importlib
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ros2_tracker.core.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh
from ros2_tracker.core.track import TrackSet, TrackState, Trajectories

__all__ = [
    "DetectionArrays",
    "SequenceGaps",
    "TrackArrays",
    "arrays_to_detections",
    "detections_to_arrays",
    "ns_to_stamp",
    "published_tracks",
    "seconds_to_stamp",
    "stamp_to_ns",
    "stamp_to_seconds",
    "track_array_to_arrays",
    "track_array_to_track_list",
    "track_list_to_track_array",
    "tracks_to_msg",
    "vision_msgs_available",
]

_NS = 1_000_000_000


class DetectionArrays(NamedTuple):
    """The valid detections of one message as arrays.

    Attributes:
        boxes_xyxy: (N, 4) float64 boxes x1, y1, x2, y2 [px].
        scores: (N,) float64 scores.
        classes: (N,) int64 class ids (-1 when unknown).
        stamp_s: ``header.stamp`` [s].
        invalid: number of detections dropped from the message because their box had a NaN/inf
            value or a width/height <= 0, or their score was not finite (counted, never raised).
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    stamp_s: float
    invalid: int = 0


class TrackArrays(NamedTuple):
    """The tracks of one ``TrackArray`` message as arrays (row i is one track).

    Attributes:
        ids: (N,) int64 track ids.
        classes: (N,) int64 class ids (-1 when unknown).
        class_names: N class labels; empty strings when the message carries none.
        scores: (N,) float64 scores.
        states: (N,) int8 ``TrackState`` values.
        boxes_xyxy: (N, 4) float64 boxes x1, y1, x2, y2 [px].
        velocities: (N, 4) float64 d/dt of (cx, cy, w, h) [px/s].
        box_variances: (N, 4) float64 variances of (cx, cy, w, h) [px^2].
        ages_s: (N,) seconds since each track started.
        hits: (N,) int64 matched detections.
        time_since_update_s: (N,) seconds since the last matched detection.
        trajectory_step_s: time between trajectory points [s] (0.0 when K = 0).
        trajectories: (N, K, 2) float64 predicted centres x, y [px] at stamp + (k + 1) * step.
        trajectory_covariances: (N, K, 3) float64 (var_x, cov_xy, var_y) [px^2].
        stamp_s: ``header.stamp`` [s].
        frame_id: ``header.frame_id``.
        positions: (N, 3) float64 positions x, y, z [m] in the camera's optical frame (NaN rows: none this
            frame), or None when the message carries no positions (no depth).
        position_velocities: (N, 3) float64 velocities [m/s] in that frame (NaN rows: unknown), or None with
            ``positions``.
    """

    ids: np.ndarray
    classes: np.ndarray
    class_names: list[str]
    scores: np.ndarray
    states: np.ndarray
    boxes_xyxy: np.ndarray
    velocities: np.ndarray
    box_variances: np.ndarray
    ages_s: np.ndarray
    hits: np.ndarray
    time_since_update_s: np.ndarray
    trajectory_step_s: float
    trajectories: np.ndarray
    trajectory_covariances: np.ndarray
    stamp_s: float
    frame_id: str
    positions: np.ndarray | None = None
    position_velocities: np.ndarray | None = None

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.ids)


# ---------------------------------------------------------------------------------------- stamps
def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds (exact; use it as a dictionary key)."""
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def ns_to_stamp(ns: int, stamp_cls: type | None = None) -> Any:
    """Integer nanoseconds -> ``builtin_interfaces/Time`` (exact; negative times floor to sec < 0)."""
    sec, nanosec = divmod(int(ns), _NS)
    cls = stamp_cls or _time_cls()
    return cls(sec=sec, nanosec=nanosec)


def stamp_to_seconds(stamp: Any) -> float:
    """``builtin_interfaces/Time`` -> float seconds.

    Round-trips exactly through :func:`seconds_to_stamp` while ``sec`` < 2**22 (~48 days, e.g.
    replay stamps from 0); for epoch stamps a float64 resolves ~0.24 us, plenty for motion (use
    :func:`stamp_to_ns` for exact comparisons and dictionary keys).
    """
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def seconds_to_stamp(seconds: float, stamp_cls: type | None = None) -> Any:
    """Float seconds -> ``builtin_interfaces/Time``, rounded to the nearest nanosecond.

    The integer and fractional parts are converted separately, so for any stamp ``s`` with
    ``sec < 2**22`` ``seconds_to_stamp(stamp_to_seconds(s)) == s`` exactly.
    """
    if not np.isfinite(seconds):
        raise ValueError(f"stamp must be finite, got {seconds}")
    sec = int(np.floor(seconds))
    nanosec = round((seconds - sec) * _NS)
    if nanosec >= _NS:  # e.g. 0.9999999999 s
        sec, nanosec = sec + 1, nanosec - _NS
    cls = stamp_cls or _time_cls()
    return cls(sec=sec, nanosec=nanosec)


def _time_cls() -> type:
    return importlib.import_module("builtin_interfaces.msg").Time


# ------------------------------------------------------------------------------------ detections
def detections_to_arrays(msg: Any, class_ids: dict[str, int] | None = None) -> DetectionArrays:
    """A ``ros2_tracker/Detection2DArray`` (or ``vision_msgs/Detection2DArray``) -> arrays.

    Invalid detections (NaN/inf box or score, width or height <= 0) are dropped and counted in
    ``invalid``; nothing is raised for bad values, so a node can log and go on.

    Args:
        msg: the message; ``detections[i].bbox`` is (cx, cy, w, h) [px] (vision_msgs:
            ``bbox.center.position.{x,y}``, ``bbox.size_x``, ``bbox.size_y``).
        class_ids: vision_msgs class names that are not integers ("person", "bicycle") -> ids, filled
            here: each new name gets the next id below -1 (-2, -3, ...), so that classes named by text
            are kept apart like numbered ones (the caller keeps the table for the node's life). None:
            they all read as -1 (unknown).

    Returns:
        :class:`DetectionArrays` with boxes in xyxy [px].
    """
    dets = msg.detections
    n = len(dets)
    stamp = stamp_to_seconds(msg.header.stamp)
    if n == 0:
        return DetectionArrays(np.empty((0, 4)), np.empty(0), np.empty(0, dtype=np.int64), stamp, 0)
    if hasattr(dets[0].bbox, "center"):
        cxcywh, scores, classes = _vision_detections(dets, class_ids)
    else:
        # bbox is a float32[4] numpy array (the generated setter and deserialisation guarantee it):
        # joining the raw bytes is ~2x faster than stacking 100 small arrays
        cxcywh = np.frombuffer(b"".join([d.bbox.tobytes() for d in dets]), dtype=np.float32)
        cxcywh = cxcywh.reshape(n, 4).astype(np.float64)
        scores = np.fromiter([d.score for d in dets], dtype=np.float64, count=n)
        classes = np.fromiter([d.class_id for d in dets], dtype=np.int64, count=n)
    ok = np.isfinite(cxcywh).all(axis=1) & (cxcywh[:, 2] > 0) & (cxcywh[:, 3] > 0) & np.isfinite(scores)
    invalid = int(n - np.count_nonzero(ok))
    if invalid:
        cxcywh, scores, classes = cxcywh[ok], scores[ok], classes[ok]
    return DetectionArrays(cxcywh_to_xyxy(cxcywh), scores, classes, stamp, invalid)


def _vision_detections(dets: Any, class_ids: dict[str, int] | None = None,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """vision_msgs/Detection2D list -> (cxcywh, scores, classes); best hypothesis per detection."""
    n = len(dets)
    cxcywh = np.empty((n, 4))
    scores = np.ones(n)  # no hypothesis: an unscored box, as confident as arrays without scores
    classes = np.full(n, -1, dtype=np.int64)
    for i, d in enumerate(dets):
        b = d.bbox
        cxcywh[i] = (b.center.position.x, b.center.position.y, b.size_x, b.size_y)
        if d.results:
            # a NaN score compares False both ways, so max() could return it over a finite one: skip it
            # (all non-finite: the first one's score, and the detection is dropped as invalid)
            scored = [r for r in d.results if math.isfinite(r.hypothesis.score)] or d.results[:1]
            best = max(scored, key=lambda r: r.hypothesis.score)
            scores[i] = best.hypothesis.score
            classes[i] = _class_number(best.hypothesis.class_id, class_ids)
    return cxcywh, scores, classes


_INT32 = np.iinfo(np.int32)


def _class_number(class_id: Any, names: dict[str, int] | None = None) -> int:
    """vision_msgs' string class id -> int: the number it spells (-1 beyond int32, the type of
    ``TrackArray.class_ids``); a name ("person") -> its id in ``names`` (a new one: the next id below
    -1), or -1 without a table (or an empty name)."""
    text = str(class_id).strip()
    try:
        number = int(text)
    except ValueError:
        if names is None or not text:
            return -1
        if text not in names:
            names[text] = max(-2 - len(names), _INT32.min)
        return names[text]
    return number if _INT32.min <= number <= _INT32.max else -1


def arrays_to_detections(boxes_xyxy: np.ndarray, scores: np.ndarray | None, classes: np.ndarray | None,
                         header: Any, msg_types: Any, *, fast: bool = True) -> Any:
    """Arrays -> a new ``ros2_tracker/Detection2DArray``.

    Args:
        boxes_xyxy: (N, 4) boxes x1, y1, x2, y2 [px].
        scores: (N,) scores in [0, 1]; 1.0 when None.
        classes: (N,) integer class ids; -1 when None.
        header: the ``std_msgs/Header`` to copy (stamp of the source image, camera frame).
        msg_types: object with ``Detection2D`` and ``Detection2DArray`` classes (``ros2_tracker.msg``).
        fast: fill the messages' slots directly when possible (as :func:`tracks_to_msg`).
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    bbox32 = xyxy_to_cxcywh(boxes).astype(np.float32)
    score_list = [1.0] * n if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1).tolist()
    class_list = [-1] * n if classes is None else np.asarray(classes).astype(np.int64).reshape(-1).tolist()
    if len(score_list) != n or len(class_list) != n:
        raise ValueError(f"boxes ({n}), scores ({len(score_list)}) and classes ({len(class_list)}) "
                         "must have the same length")
    det = msg_types.Detection2D
    if fast and _has_slot_layout(det, _DETECTION_FIELDS):
        new, check = object.__new__, "_check_fields" in det.__slots__
        out = []
        for box, cid, score in zip(bbox32, class_list, score_list, strict=True):
            d = new(det)
            if check:
                d._check_fields = False
            d._id = ""
            d._bbox = box
            d._class_id = cid
            d._score = score
            out.append(d)
    else:
        out = [det(bbox=bbox32[i], class_id=class_list[i], score=score_list[i]) for i in range(n)]
    return msg_types.Detection2DArray(header=header, detections=out)


def vision_msgs_available() -> bool:
    """True when ``vision_msgs`` (optional; not on PyPI) can be imported."""
    try:
        importlib.import_module("vision_msgs.msg")
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------- tracks
def published_tracks(tracks: TrackSet, trajectories: Trajectories, *, publish_lost: bool,
                     publish_tentative: bool) -> tuple[TrackSet, Trajectories]:
    """The tracks (and their trajectories, same rows) a node publishes: confirmed always, lost and
    tentative ones as configured.

    Raises:
        ValueError: ``trajectories`` does not hold the same tracks in the same order.
    """
    if not np.array_equal(tracks.ids, trajectories.ids):
        raise ValueError("trajectories must hold the same track ids as tracks, in the same order")
    keep = tracks.states == TrackState.CONFIRMED
    if publish_lost:
        keep |= tracks.states == TrackState.LOST
    if publish_tentative:
        keep |= tracks.states == TrackState.TENTATIVE
    if keep.all():
        return tracks, trajectories
    return tracks.select(keep), Trajectories(trajectories.ids[keep], trajectories.times_s,
                                             trajectories.centres[keep], trajectories.covariances[keep])


def tracks_to_msg(tracks: TrackSet, trajectories: Trajectories | None, header: Any, msg_types: Any, *,
                  class_names: dict[int, str] | None = None, positions: np.ndarray | None = None,
                  position_velocities: np.ndarray | None = None) -> Any:
    """A :class:`TrackSet` (and its predicted trajectories) -> a new ``ros2_tracker/TrackArray``.

    Every array field is an ``array.array`` made from one ``tobytes()`` buffer, so building costs
    about the same for 10 or 500 tracks (no Python object per track).

    Args:
        tracks: N tracks (boxes xyxy [px]).
        trajectories: the same N tracks' trajectories (same order; ``times_s`` = (k + 1) * step), or
            None for none (K = 0).
        header: the ``std_msgs/Header`` to copy (stamp of the detections, camera frame).
        msg_types: object with a ``TrackArray`` class (e.g. the module ``ros2_tracker.msg``).
        class_names: optional class id -> label; given, ``class_names`` holds N labels ("" for ids
            not in it), else it stays empty (labels cost one Python string per track).
        positions: optional (N, 3) positions x, y, z [m] (NaN rows: none), e.g. from
            :func:`ros2_tracker.core.depth.box_positions`; None leaves ``positions`` empty.
        position_velocities: optional (N, 3) velocities [m/s] (NaN rows: unknown), e.g. from
            :func:`ros2_tracker.core.depth.position_velocities`; only with ``positions``.

    Raises:
        ValueError: ``trajectories``, ``positions`` or ``position_velocities`` has a different number of
            tracks, velocities come without positions, or the trajectory times are unevenly spaced.
    """
    n = len(tracks)
    if positions is not None and np.shape(positions) != (n, 3):
        raise ValueError(f"positions must have shape ({n}, 3), got {np.shape(positions)}")
    if position_velocities is not None and (positions is None or np.shape(position_velocities) != (n, 3)):
        alone = " without positions" if positions is None else ""
        raise ValueError(f"position_velocities must have shape ({n}, 3) and come with positions, got "
                         f"{np.shape(position_velocities)}{alone}")
    k, step, traj, cov = _trajectory_fields(trajectories, n)
    names = [] if not class_names else [class_names.get(c, "") for c in tracks.classes.tolist()]
    return msg_types.TrackArray(
        header=header,
        ids=_buffer("Q", tracks.ids, np.uint64),
        class_ids=_buffer("i", _int32_classes(tracks.classes), np.int32),
        class_names=names,
        scores=_buffer("f", tracks.scores),
        states=_buffer("B", tracks.states, np.uint8),
        boxes=_buffer("f", xyxy_to_cxcywh(tracks.boxes_xyxy)),
        velocities=_buffer("f", tracks.velocities),
        box_variances=_buffer("f", tracks.box_variances),
        ages=_buffer("f", tracks.ages_s),
        hits=_buffer("I", tracks.hits, np.uint32),
        times_since_update=_buffer("f", tracks.time_since_update_s),
        trajectory_step=step,
        trajectory_length=k,
        trajectories=traj,
        trajectory_covariances=cov,
        positions=array.array("f") if positions is None else _buffer("f", positions),
        position_velocities=array.array("f") if position_velocities is None else
        _buffer("f", position_velocities),
    )


def _int32_classes(classes: np.ndarray) -> np.ndarray:
    """Class ids as ``TrackArray.class_ids`` holds them (int32): -1 (unknown) for any beyond int32, which a
    plain cast would wrap to a valid but wrong class."""
    classes = np.asarray(classes)
    if not len(classes) or (classes.min() >= _INT32.min and classes.max() <= _INT32.max):
        return classes
    return np.where((classes >= _INT32.min) & (classes <= _INT32.max), classes, -1)


def _buffer(typecode: str, values: np.ndarray, dtype: Any = np.float32) -> array.array:
    """An ``array.array`` of ``typecode`` holding ``values`` as ``dtype``, filled from one buffer."""
    return array.array(typecode, np.ascontiguousarray(values, dtype=dtype).tobytes())


def _trajectory_fields(trajectories: Trajectories | None,
                       n: int) -> tuple[int, float, array.array, array.array]:
    """(K, step [s], N*K*2 centres, N*K*3 covariances) of the message's trajectory fields."""
    if trajectories is None or trajectories.centres.shape[1] == 0:
        return 0, 0.0, array.array("f"), array.array("f")
    if len(trajectories.centres) != n:
        raise ValueError(f"trajectories hold {len(trajectories.centres)} tracks, tracks hold {n}")
    k = trajectories.centres.shape[1]
    times = np.asarray(trajectories.times_s, dtype=np.float64)
    step = float(times[0])
    if len(times) != k or not np.allclose(times, step * np.arange(1, k + 1), rtol=1e-6, atol=1e-9):
        raise ValueError(f"trajectory times must be (k + 1) * step for k = 0 .. {k - 1}, "
                         f"got {times.tolist()}")
    return k, step, _buffer("f", trajectories.centres), _buffer("f", trajectories.covariances)


def track_array_to_arrays(msg: Any) -> TrackArrays:
    """A ``ros2_tracker/TrackArray`` -> :class:`TrackArrays` (boxes back in xyxy, float64 copies).

    Raises:
        ValueError: the array lengths do not fit N = len(ids) and K = trajectory_length (a malformed
            message from another publisher).
    """
    n, k = len(msg.ids), int(msg.trajectory_length)
    _check_track_array(msg, n, k)

    def f64(field: Any, *shape: int) -> np.ndarray:
        return np.frombuffer(field, dtype=np.float32).astype(np.float64).reshape(*shape)

    names = list(msg.class_names) or [""] * n
    return TrackArrays(
        ids=np.frombuffer(msg.ids, dtype=np.uint64).astype(np.int64),
        classes=np.frombuffer(msg.class_ids, dtype=np.int32).astype(np.int64),
        class_names=names,
        scores=f64(msg.scores, n),
        states=np.frombuffer(msg.states, dtype=np.uint8).astype(np.int8),
        boxes_xyxy=cxcywh_to_xyxy(f64(msg.boxes, n, 4)),
        velocities=f64(msg.velocities, n, 4),
        box_variances=f64(msg.box_variances, n, 4),
        ages_s=f64(msg.ages, n),
        hits=np.frombuffer(msg.hits, dtype=np.uint32).astype(np.int64),
        time_since_update_s=f64(msg.times_since_update, n),
        trajectory_step_s=float(msg.trajectory_step) if k else 0.0,
        trajectories=f64(msg.trajectories, n, k, 2),
        trajectory_covariances=f64(msg.trajectory_covariances, n, k, 3),
        stamp_s=stamp_to_seconds(msg.header.stamp),
        frame_id=str(msg.header.frame_id),
        positions=f64(msg.positions, n, 3) if len(msg.positions) else None,
        position_velocities=f64(msg.position_velocities, n, 3) if len(msg.position_velocities) else None,
    )


def _check_track_array(msg: Any, n: int, k: int) -> None:
    """Raise ValueError naming the first array field whose length does not fit N tracks, K points."""
    expected = {"class_ids": n, "scores": n, "states": n, "boxes": 4 * n, "velocities": 4 * n,
                "box_variances": 4 * n, "ages": n, "hits": n, "times_since_update": n,
                "trajectories": 2 * k * n, "trajectory_covariances": 3 * k * n}
    for name, want in expected.items():
        got = len(getattr(msg, name))
        if got != want:
            raise ValueError(f"malformed TrackArray: {name} has {got} values, expected {want} for "
                             f"{n} tracks (len(ids)) with trajectory_length {k}")
    if len(msg.class_names) not in (0, n):
        raise ValueError(f"malformed TrackArray: class_names has {len(msg.class_names)} entries, "
                         f"expected 0 or {n}")
    if len(msg.positions) not in (0, 3 * n):
        raise ValueError(f"malformed TrackArray: positions has {len(msg.positions)} values, expected 0 or "
                         f"{3 * n} for {n} tracks")
    if len(msg.position_velocities) not in {0, len(msg.positions)}:
        raise ValueError(f"malformed TrackArray: position_velocities has {len(msg.position_velocities)} "
                         f"values, expected 0 or as many as positions ({len(msg.positions)})")


def track_array_to_track_list(msg: Any, msg_types: Any, *, fast: bool = True) -> list:
    """A ``ros2_tracker/TrackArray`` -> one ``ros2_tracker/Track`` per track, in order.

    For users who prefer objects; costs a Python object per track (~0.15 ms at 100 tracks, ~6x
    :func:`track_array_to_arrays`). The stamp and frame stay with the caller
    (``msg.header``).

    Args:
        msg: the message.
        msg_types: object with a ``Track`` class (``ros2_tracker.msg``).
        fast: fill the Track objects' slots directly when the class has rosidl_generator_py's
            layout (see :func:`_has_slot_layout`); False always uses the keyword constructor.

    Raises:
        ValueError: a malformed message (see :func:`track_array_to_arrays`).
    """
    n, k = len(msg.ids), int(msg.trajectory_length)
    _check_track_array(msg, n, k)

    def rows(field: Any, width: int) -> list:
        return list(np.frombuffer(field, dtype=np.float32).reshape(n, width).copy())

    def chunks(field: Any, width: int) -> list[array.array]:
        raw, size = field.tobytes(), width * 4
        return [array.array("f", raw[i * size:(i + 1) * size]) for i in range(n)]

    step = float(msg.trajectory_step) if k else 0.0
    cols = (list(msg.ids), list(msg.class_ids), list(msg.class_names) or [""] * n, list(msg.scores),
            list(msg.states), rows(msg.boxes, 4), rows(msg.velocities, 4), rows(msg.box_variances, 4),
            list(msg.ages), list(msg.hits), list(msg.times_since_update), [step] * n,
            chunks(msg.trajectories, 2 * k), chunks(msg.trajectory_covariances, 3 * k),
            chunks(msg.positions, 3 if len(msg.positions) else 0),
            chunks(msg.position_velocities, 3 if len(msg.position_velocities) else 0))
    track = msg_types.Track
    if fast and _has_slot_layout(track, _TRACK_FIELDS):
        return _build_tracks_fast(track, cols)
    return [track(**dict(zip(_TRACK_FIELDS, row, strict=True))) for row in zip(*cols, strict=True)]


def track_list_to_track_array(tracks: Sequence[Any], header: Any, msg_types: Any) -> Any:
    """``ros2_tracker/Track`` messages -> one ``ros2_tracker/TrackArray`` (the inverse of
    :func:`track_array_to_track_list`).

    ``class_names`` stays empty when every track's ``class_name`` is empty.

    Args:
        tracks: N Track messages, all with the same trajectory length K and (when K > 0) step.
        header: the ``std_msgs/Header`` of the array.
        msg_types: object with a ``TrackArray`` class.

    Raises:
        ValueError: the tracks' trajectories differ in length or step, a trajectory's covariance
            does not hold 3 values per point, or some tracks have a position and others none.
    """
    n = len(tracks)
    lengths = {len(t.trajectory) for t in tracks}
    if len(lengths) > 1 or any(v % 2 for v in lengths):
        raise ValueError(f"all tracks need trajectories of the same K points (2K values), got lengths "
                         f"{sorted(lengths)}")
    k = lengths.pop() // 2 if lengths else 0
    if any(len(t.trajectory_covariance) != 3 * k for t in tracks):
        raise ValueError(f"every trajectory_covariance must hold 3 * K = {3 * k} values")
    steps = {float(t.trajectory_step) for t in tracks} if k else {0.0}
    if len(steps) > 1:
        raise ValueError(f"all tracks need the same trajectory_step, got {sorted(steps)}")
    for field in ("position", "position_velocity"):
        sizes = {len(getattr(t, field)) for t in tracks}
        if not sizes <= {0} and sizes != {3}:
            raise ValueError(f"every track's {field} must hold 3 values, or every track's none; got lengths "
                             f"{sorted(sizes)}")
    if any(len(t.position_velocity) and not len(t.position) for t in tracks):
        raise ValueError("a track's position_velocity needs its position")
    names = [t.class_name for t in tracks]

    def join(field: str) -> array.array:  # Track's float32[4] are numpy rows, its float32[] array.array
        parts = [getattr(t, field) for t in tracks]
        if field in ("trajectory", "trajectory_covariance", "position", "position_velocity"):
            return array.array("f", b"".join(p.tobytes() for p in parts))
        return _buffer("f", np.asarray(parts, dtype=np.float32).reshape(n, 4))

    return msg_types.TrackArray(
        header=header,
        ids=array.array("Q", [t.id for t in tracks]),
        class_ids=array.array("i", [t.class_id for t in tracks]),
        class_names=names if any(names) else [],
        scores=array.array("f", [t.score for t in tracks]),
        states=array.array("B", [t.state for t in tracks]),
        boxes=join("box"),
        velocities=join("velocity"),
        box_variances=join("box_variance"),
        ages=array.array("f", [t.age for t in tracks]),
        hits=array.array("I", [t.hits for t in tracks]),
        times_since_update=array.array("f", [t.time_since_update for t in tracks]),
        trajectory_step=steps.pop() if n else 0.0,
        trajectory_length=k,
        trajectories=join("trajectory"),
        trajectory_covariances=join("trajectory_covariance"),
        positions=join("position"),
        position_velocities=join("position_velocity"),
    )


_TRACK_FIELDS = ("id", "class_id", "class_name", "score", "state", "box", "velocity", "box_variance", "age",
                 "hits", "time_since_update", "trajectory_step", "trajectory", "trajectory_covariance",
                 "position", "position_velocity")
_DETECTION_FIELDS = ("id", "bbox", "class_id", "score")


@functools.cache
def _has_slot_layout(cls: type, fields: tuple[str, ...]) -> bool:
    """True when ``cls`` keeps exactly ``fields`` in slots named ``_<field>`` (+ ``_check_fields``).

    That is the layout rosidl_generator_py gives every message class (rclpy reads the fields back
    through the properties of the same names when it serialises). Building a message by filling
    these slots skips ``__init__``, which first creates default values (numpy arrays,
    ``array.array``) and then copies every argument (~13x slower for 500 Track objects). The values
    put there are exactly what the setters would store (Python ints/floats/str, float32 numpy rows
    of length 4, ``array.array('f')``). Any other layout (a future generator) falls back to the
    constructor.
    """
    try:
        declared = tuple(cls.get_fields_and_field_types())  # type: ignore[attr-defined]
    except AttributeError:
        return False
    slots, wanted = set(getattr(cls, "__slots__", ())), {"_" + f for f in fields}
    return declared == fields and wanted <= slots and slots - wanted <= {"_check_fields"}


def _build_tracks_fast(cls: type, cols: tuple) -> list:
    """Track objects from per-field columns (see :func:`_has_slot_layout`)."""
    new, check = object.__new__, "_check_fields" in cls.__slots__  # type: ignore[attr-defined]
    out = []
    for row in zip(*cols, strict=True):
        tid, cid, name, score, state, box, vel, var, age, hits, since, step, traj, cov, pos, pos_vel = row
        t = new(cls)
        if check:
            t._check_fields = False
        t._id = tid
        t._class_id = cid
        t._class_name = name
        t._score = score
        t._state = state
        t._box = box
        t._velocity = vel
        t._box_variance = var
        t._age = age
        t._hits = hits
        t._time_since_update = since
        t._trajectory_step = step
        t._trajectory = traj
        t._trajectory_covariance = cov
        t._position = pos
        t._position_velocity = pos_vel
        out.append(t)
    return out


class SequenceGaps:
    """Messages a subscription never got, counted from gaps in each publisher's publication sequence
    numbers (rclpy's ``MessageInfo``). A reliable keep-last queue that overflows while its node falls
    behind drops the oldest messages without any event (DDS's ``message_lost`` stays silent), so this is how
    a node can say that it did not see everything. A publisher whose numbers go back (it restarted) starts
    over; middlewares without sequence numbers count nothing.
    """

    def __init__(self) -> None:
        self.lost = 0
        self._last: dict[bytes, int] = {}
        self._unreported = 0
        self._reported_at = -math.inf

    def add(self, info: Any) -> int:
        """Account for one received message's ``MessageInfo``; returns how many were missed just before it."""
        seq, gid = info.get("publication_sequence_number"), info.get("publisher_gid")
        if not seq or not gid:
            return 0
        key = bytes(gid.get("data", b"")) if isinstance(gid, dict) else bytes(gid)
        last = self._last.get(key)
        self._last[key] = seq
        if last is None or seq <= last:
            return 0
        self.lost += seq - last - 1
        self._unreported += seq - last - 1
        return seq - last - 1

    def due(self, now: float, every_s: float) -> int:
        """The messages missed since the last report, when a report is due (at most one per ``every_s``
        seconds of the monotonic clock ``now``), else 0: what a throttled log line would leave out is
        kept for the next report, so the reports add up to :attr:`lost`."""
        if not self._unreported or now - self._reported_at < every_s:
            return 0
        n, self._unreported, self._reported_at = self._unreported, 0, now
        return n

