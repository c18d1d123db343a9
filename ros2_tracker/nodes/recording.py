"""What a replay's recorder_node recorded, read back from its bag: the tracks as MOTChallenge result rows
(and what the video draws of each frame), and the latency profile of the graph (per stage from the nodes'
``~/timing`` topics, end to end from the replay's ``/clock``). ``ros2-tracker replay`` writes its results
from these; they need rclpy's serialisation and the package's messages, not a running graph."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DRAWN_HORIZON_S", "TrackRows", "format_latency", "latency_profile", "tracks_from_bag"]

_NS = 1_000_000_000
_MAX_AGE_S = 3600.0  # a TrackArray received later than this after its stamp: stamps on another clock
DRAWN_HORIZON_S = 1.0
"""Predicted paths in the video are cut to this horizon [s] (the tracker may publish more)."""


@dataclass
class TrackRows:
    """Tracks read back from the bag.

    Attributes:
        frames, ids, boxes_tlwh, scores: MOTChallenge result rows (confirmed tracks matched in the frame).
        snapshots: per frame, what to draw (:class:`ros2_tracker.viz.sequence.FrameTracks`); empty when
            not asked for.
        stamps_ns: the tracks messages' stamps, in order.
        classes: (N,) class id per row (-1 unknown), or None: offline refinement never links two classes.
        message_frames: the frame number of each tracks message, in order (empty when not known).
        message_rows: the number of result rows of each tracks message, in order.
        unreadable: the messages that could not be read (not deserialisable, or malformed), skipped, each as
            ``(index among the topic's messages, header stamp [ns] or None, reason)``.
        positions: (N, 3) each row's 3D position x, y, z [m] (tracker_node ``use_depth``; NaN where the track
            had none in that frame), or None when no message carried positions.
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes_tlwh: np.ndarray
    scores: np.ndarray
    snapshots: list[Any]
    stamps_ns: list[int]
    classes: np.ndarray | None = None
    message_frames: list[int] = field(default_factory=list)
    positions: np.ndarray | None = None
    message_rows: list[int] = field(default_factory=list)
    unreadable: list[tuple[int, int | None, str]] = field(default_factory=list)


def tracks_from_bag(bag: Path, fps: float, topic: str = "/tracks", report_lost_s: float = 0.0, *,
                    snapshots: bool = True) -> TrackRows:
    """Result rows from the recorded TrackArray messages: the tracks ``core.track.reported_mask`` reports
    (``report_lost_s``: the tracker config's); with ``snapshots``, also what the video draws of each.

    Frame numbers: ``round(stamp * fps) + 1`` (the replay stamps frame k with (k - 1) / fps), or, with
    ``fps`` 0 (bag sources keep their recorded stamps), the rank of the stamp among the tracks' stamps
    (given once every stamp is known). Messages are converted one at a time and only their rows kept: an
    hour's replay is some 100,000 messages, a few GB as whole arrays.
    """
    from ros2_tracker.core.boxes import xyxy_to_tlwh
    from ros2_tracker.core.track import TrackState, reported_mask
    from ros2_tracker.io.bag import cdr_header_stamp_ns, deserialized, read_bag
    from ros2_tracker.nodes.conversions import stamp_to_ns, track_array_to_arrays
    from ros2_tracker.viz.sequence import FrameTracks

    stamps, frames, counts = [], [], []
    out_i, out_b, out_s, out_c, out_p, snaps = [], [], [], [], [], []
    with_positions = False
    unreadable: list[tuple[int, int | None, str]] = []
    for index, (raw, m, error) in enumerate(deserialized(read_bag(bag, [topic]))):
        try:  # a damaged message is skipped and counted; the rest of the run is still read
            if error is not None:  # (not CDR of a TrackArray)
                raise error
            stamp, tr = stamp_to_ns(m.header.stamp), track_array_to_arrays(m)
        except (RuntimeError, ValueError, TypeError) as exc:  # rclpy's RMWError (bad CDR), a malformed array
            try:
                at: int | None = cdr_header_stamp_ns(raw.data)
            except ValueError:
                at = None
            reason = str(exc).splitlines()[0] if str(exc) else ""
            unreadable.append((index, at, f"{type(exc).__name__}: {reason}"))
            continue
        frame = round(stamp * fps / _NS) + 1 if fps > 0 else 0  # 0: ranked below
        rep = reported_mask(tr.states, tr.time_since_update_s, report_lost_s)
        stamps.append(stamp)
        frames.append(frame)
        counts.append(int(np.count_nonzero(rep)))
        out_i.append(tr.ids[rep])
        out_b.append(xyxy_to_tlwh(tr.boxes_xyxy[rep]) if counts[-1] else np.empty((0, 4)))
        out_s.append(tr.scores[rep])
        out_c.append(tr.classes[rep])
        with_positions |= tr.positions is not None
        out_p.append(np.full((counts[-1], 3), np.nan) if tr.positions is None else tr.positions[rep])
        if snapshots:
            snaps.append(_snapshot(FrameTracks, frame, tr, TrackState.TENTATIVE))

    if fps <= 0 and stamps:
        frames = (np.unique(stamps, return_inverse=True)[1] + 1).tolist()
        snaps = [dataclasses.replace(s, frame=f) for s, f in zip(snaps, frames, strict=True)] if snaps else []

    def cat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.empty(shape, dtype)

    return TrackRows(np.repeat(np.asarray(frames, dtype=np.int64), counts), cat(out_i, (0,), np.int64),
                     cat(out_b, (0, 4), np.float64), cat(out_s, (0,), np.float64), snaps, stamps,
                     cat(out_c, (0,), np.int64), frames,
                     cat(out_p, (0, 3), np.float64) if with_positions else None, counts, unreadable)


def _snapshot(cls: type, frame: int, tr: Any, tentative: int, horizon_s: float = DRAWN_HORIZON_S) -> Any:
    """What the video shows of one TrackArray: non-tentative tracks, paths cut to ``horizon_s``."""
    keep = np.flatnonzero(tr.states != tentative)
    k_all, step = tr.trajectories.shape[1], tr.trajectory_step_s
    if len(keep) == 0 or k_all == 0:
        return cls(frame, tr.ids[keep], tr.boxes_xyxy[keep], tr.states[keep])
    k = max(1, min(k_all, int(horizon_s / step + 1e-9) if step > 0 else 1))
    return cls(frame, tr.ids[keep], tr.boxes_xyxy[keep], tr.states[keep], tr.trajectories[keep, :k],
               tr.trajectory_covariances[keep, :k])


def _stats_ms(seconds: list[float]) -> dict[str, float | int]:
    a = np.asarray(seconds, dtype=np.float64) * 1e3
    return {"count": len(a), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean()), "max_ms": float(a.max())}


def latency_profile(bag: Path, tracks_topic: str = "/tracks", clock_topic: str = "/clock", *,
                    live: bool = False) -> dict[str, Any]:
    """Per-stage and end-to-end latency from a replay's bag (with ``live``, a live run's: stamp to recorder).

    Stages come from the ``~/timing`` messages (``std_msgs/String`` JSON ``{"stamp", "stage", "seconds"}``)
    of every node. End to end, per frame: the recorder's receive time of the frame's TrackArray minus the
    publish time (DDS source timestamp) of the replay's ``/clock`` message with the frame's stamp, which
    the replay sends just before the frame's image / detections. All times are system-clock nanoseconds
    of the same machine.

    Returns:
        ``{"stages": {stage: {count, p50_ms, p99_ms, mean_ms, max_ms}}, "end_to_end": {...},
        "span_s": S, "stamp_to_receive": {...}, "definitions": {...}}``; stages without messages are left
        out, ``end_to_end`` / ``span_s`` without /clock messages, and ``stamp_to_receive`` unless ``live``
        and every TrackArray came within an hour after its own stamp (stamps on the recorder's clock: a
        replayed bag keeps its recording's stamps).
    """
    from ros2_tracker.io.bag import bag_topics, cdr_header_stamp_ns, read_bag

    topics = bag_topics(bag)
    timing_topics = [t for t, ty in topics.items() if t.endswith("/timing") and ty == "std_msgs/msg/String"]
    stages: dict[str, list[float]] = {}
    clock_sent: dict[int, int] = {}
    tracks_received: dict[int, int] = {}
    from rclpy.serialization import deserialize_message
    from std_msgs.msg import String

    for m in read_bag(bag, [*timing_topics, tracks_topic, clock_topic]):
        if m.topic == tracks_topic:
            tracks_received.setdefault(cdr_header_stamp_ns(m.data), m.log_time_ns)
        elif m.topic == clock_topic:
            clock_sent.setdefault(cdr_header_stamp_ns(m.data), m.publish_time_ns or m.log_time_ns)
        else:
            try:
                rec = json.loads(deserialize_message(m.data, String).data)
                stages.setdefault(str(rec["stage"]), []).append(float(rec["seconds"]))
            except (ValueError, KeyError, TypeError):
                continue
    e2e = [(tracks_received[s] - clock_sent[s]) / _NS for s in tracks_received if s in clock_sent]
    profile: dict[str, Any] = {"stages": {k: _stats_ms(v) for k, v in sorted(stages.items()) if v}}
    if e2e:
        profile["end_to_end"] = _stats_ms(e2e)
        profile["span_s"] = (max(tracks_received.values()) - min(clock_sent.values())) / _NS
    ages = [(received - stamp) / _NS for stamp, received in tracks_received.items()]
    if live and ages and 0.0 <= min(ages) and max(ages) <= _MAX_AGE_S:  # stamps on the recorder's clock
        profile["stamp_to_receive"] = _stats_ms(ages)
    profile["definitions"] = {
        "stages": "per-message processing time each node publishes on ~/timing",
        "end_to_end": "frame published by the replay (source timestamp of its /clock message) -> its "
                      "TrackArray received by the recorder",
        "span_s": "first frame published -> last TrackArray received [s]",
        "stamp_to_receive": "a frame's stamp (its capture, on a live camera) -> its TrackArray received by "
                            "the recorder; only when every stamp is on the recorder's clock (not a replay's)",
    }
    return profile


def format_latency(profile: dict[str, Any]) -> str:
    """The latency profile as a table (ms)."""
    rows = [(k, v) for k, v in profile["stages"].items()]
    if "end_to_end" in profile:
        rows.append(("end to end", profile["end_to_end"]))
    if "stamp_to_receive" in profile:
        rows.append(("stamp to bag", profile["stamp_to_receive"]))
    lines = [f"{'stage':12s} {'count':>6s} {'p50 ms':>8s} {'p99 ms':>8s} {'mean ms':>8s} {'max ms':>8s}"]
    for name, s in rows:
        lines.append(f"{name:12s} {s['count']:6d} {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} {s['mean_ms']:8.2f} "
                     f"{s['max_ms']:8.2f}")
    return "\n".join(lines)
