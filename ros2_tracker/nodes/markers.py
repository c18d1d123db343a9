"""Tracks as ``visualization_msgs/MarkerArray`` for RViz (pure function; message classes imported lazily).

Image pixels are drawn on a plane in the camera's frame: a pixel (u, v) becomes the point
x = u * scale, y = -v * scale, z = 0 [m] (``scale`` = the ``marker_scale`` parameter [m/px]), so the
image appears upright when the plane is viewed from +z. ``header.frame_id`` is the image's.

Per track, three markers share the id ``track id mod 2**31`` (``Marker.id`` is int32) in three
namespaces: ``tracks/box`` (LINE_STRIP, closed box), ``tracks/label`` (TEXT_VIEW_FACING, the id) and
``tracks/path`` (LINE_STRIP from the box centre through the predicted trajectory). With 3D positions
(``tracker_node`` ``use_depth``) a fourth, ``tracks/position`` (SPHERE, ``POSITION_DIAMETER_M`` across),
stands at each track's position (x, y, z) [m] in the same frame, the camera's optical frame: where the
person is; with their velocities a fifth, ``tracks/position_velocity`` (ARROW), from there to where the
track will be in ``VELOCITY_ARROW_S`` at that velocity. Colours come
from :func:`ros2_tracker.viz.colours.rgb_for_id` (the same colour as in annotated images); lost
tracks are drawn faded (alpha ``lost_alpha``).

Stale markers: every message is whole. It starts with one ``DELETEALL`` per namespace (RViz2 scopes a
DELETEALL to its ``ns``, so other publishers on the display keep theirs), then adds every track drawn now.
Markers last ``lifetime_s`` (the node's ``marker_lifetime_s``) unless replaced, so a stream or a node that
stops leaves nothing behind (a node stopped by a signal cannot publish a last DELETEALL: rclpy has shut its
context down before the node is destroyed).
An earlier design deleted the tracks gone since the previous call one by one: a message lost on the way
(RViz's keep-last queue dropping it while busy) or a restarted node (which never knew what an earlier one
drew) then left dead tracks on the display for good. RViz applies a message whole before it renders, so
nothing flickers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ros2_tracker.core.track import TrackSet, TrackState, Trajectories
from ros2_tracker.viz.colours import rgb_for_id

__all__ = ["MARKER_NAMESPACES", "POSITION_DIAMETER_M", "POSITION_NAMESPACE", "VELOCITY_ARROW_S",
           "VELOCITY_NAMESPACE", "marker_id", "tracks_to_markers"]

MARKER_NAMESPACES = ("tracks/box", "tracks/label", "tracks/path")
"""Namespaces of the box, label and predicted-path markers."""
POSITION_NAMESPACE = "tracks/position"
"""Namespace of the 3D position markers (only with positions)."""
POSITION_DIAMETER_M = 0.3
VELOCITY_NAMESPACE = "tracks/position_velocity"
"""Namespace of the 3D velocity arrows (only with velocities)."""
VELOCITY_ARROW_S = 1.0
"""A velocity arrow ends where its track will be this many seconds later [s]."""

_LINE_PX = 2.0  # line width [px]
_TEXT_PX = 16.0  # label height [px]


def marker_id(track_id: int) -> int:
    """The int32 ``Marker.id`` of a track id."""
    return int(track_id) % 2**31


def tracks_to_markers(tracks: TrackSet, trajectories: Trajectories | None, header: Any, *,
                      scale: float = 0.01, lost_alpha: float = 0.35, lifetime_s: float = 0.0,
                      positions: np.ndarray | None = None,
                      position_velocities: np.ndarray | None = None) -> Any:
    """The whole display of ``tracks``: a DELETEALL per namespace, then their markers.

    Args:
        tracks: the N tracks to draw (boxes xyxy [px]); none clears the display.
        trajectories: their predicted centres (same order) or None (no path markers).
        header: ``std_msgs/Header`` of the image / detections (stamp and frame_id are copied).
        scale: metres per pixel on the marker plane.
        lost_alpha: opacity of LOST tracks (others are opaque).
        lifetime_s: RViz drops a marker this long after it came, unless replaced (0: never), so a stream that
            stops (a detector that died) leaves no tracks on the display.
        positions: (N, 3) positions x, y, z [m] of the tracks (NaN rows: none this frame), or None.
        position_velocities: (N, 3) their velocities [m/s] (NaN rows: unknown), or None; only with
            ``positions``.

    Returns:
        A ``visualization_msgs/MarkerArray``: three DELETEALLs (four with ``positions``, five with their
        velocities), then per track box, label (and path), then a sphere per track with a position, then an
        arrow per track with a velocity.
    """
    from visualization_msgs.msg import Marker, MarkerArray

    if scale <= 0:
        raise ValueError(f"scale must be > 0 m/px, got {scale}")
    ids = tracks.ids.tolist()
    lifetime = _duration(lifetime_s)
    if position_velocities is not None and positions is None:
        raise ValueError("position_velocities need positions")
    spaces = MARKER_NAMESPACES if positions is None else (*MARKER_NAMESPACES, POSITION_NAMESPACE)
    if position_velocities is not None:
        spaces = (*spaces, VELOCITY_NAMESPACE)
    out = [Marker(header=header, ns=ns, action=Marker.DELETEALL) for ns in spaces]
    has_path = trajectories is not None and trajectories.centres.shape[1] > 0
    boxes = np.asarray(tracks.boxes_xyxy, dtype=np.float64) * scale
    states = tracks.states.tolist()
    for row, tid in enumerate(ids):
        colour = _colour(tid, lost_alpha if states[row] == TrackState.LOST else 1.0)
        x1, y1, x2, y2 = boxes[row].tolist()
        corners = [(x1, -y1), (x2, -y1), (x2, -y2), (x1, -y2), (x1, -y1)]
        out.append(_marker(Marker, header, MARKER_NAMESPACES[0], tid, Marker.LINE_STRIP, colour,
                           _LINE_PX * scale, corners, lifetime))
        label = _marker(Marker, header, MARKER_NAMESPACES[1], tid, Marker.TEXT_VIEW_FACING, colour,
                        _TEXT_PX * scale, [], lifetime)
        label.text = str(tid)
        label.pose.position.x, label.pose.position.y = x1, -y1 + 0.5 * _TEXT_PX * scale
        out.append(label)
        if has_path:
            centre = (0.5 * (x1 + x2), -0.5 * (y1 + y2))
            path = trajectories.centres[row] * scale  # type: ignore[union-attr]
            points = [centre] + [(u, -v) for u, v in path.tolist()]
            out.append(_marker(Marker, header, MARKER_NAMESPACES[2], tid, Marker.LINE_STRIP, colour,
                               0.5 * _LINE_PX * scale, points, lifetime))
    if positions is not None:
        out += _position_markers(Marker, header, ids, states, np.asarray(positions, dtype=np.float64),
                                 lost_alpha, lifetime)
    if position_velocities is not None:
        out += _velocity_markers(Marker, header, ids, states, np.asarray(positions, dtype=np.float64),
                                 np.asarray(position_velocities, dtype=np.float64), lost_alpha, lifetime)
    return MarkerArray(markers=out)


def _position_markers(marker_cls: type, header: Any, ids: list[int], states: list[int], positions: np.ndarray,
                      lost_alpha: float, lifetime: Any) -> list:
    """A sphere at each track's finite (x, y, z) [m]."""
    if positions.shape != (len(ids), 3):
        raise ValueError(f"positions must have shape ({len(ids)}, 3), got {positions.shape}")
    out = []
    for row in np.isfinite(positions).all(axis=1).nonzero()[0].tolist():
        colour = _colour(ids[row], lost_alpha if states[row] == TrackState.LOST else 1.0)
        sphere = _marker(marker_cls, header, POSITION_NAMESPACE, ids[row], marker_cls.SPHERE, colour,
                         POSITION_DIAMETER_M, [], lifetime)
        p = sphere.pose.position
        p.x, p.y, p.z = positions[row].tolist()
        out.append(sphere)
    return out


def _velocity_markers(marker_cls: type, header: Any, ids: list[int], states: list[int], positions: np.ndarray,
                      velocities: np.ndarray, lost_alpha: float, lifetime: Any) -> list:
    """An arrow from each track's finite position along its finite velocity, ``VELOCITY_ARROW_S`` of it."""
    from geometry_msgs.msg import Point

    if velocities.shape != (len(ids), 3):
        raise ValueError(f"position_velocities must have shape ({len(ids)}, 3), got {velocities.shape}")
    out = []
    ends = positions + VELOCITY_ARROW_S * velocities
    for row in np.isfinite(ends).all(axis=1).nonzero()[0].tolist():
        colour = _colour(ids[row], lost_alpha if states[row] == TrackState.LOST else 1.0)
        arrow = _marker(marker_cls, header, VELOCITY_NAMESPACE, ids[row], marker_cls.ARROW, colour,
                        0.25 * POSITION_DIAMETER_M, [], lifetime)
        arrow.scale.y, arrow.scale.z = 0.5 * POSITION_DIAMETER_M, 0.5 * POSITION_DIAMETER_M  # the head
        arrow.points = [Point(x=x, y=y, z=z) for x, y, z in (positions[row].tolist(), ends[row].tolist())]
        out.append(arrow)
    return out


def _colour(track_id: int, alpha: float) -> Any:
    from std_msgs.msg import ColorRGBA

    r, g, b = rgb_for_id(track_id)
    return ColorRGBA(r=float(r), g=float(g), b=float(b), a=float(alpha))


def _duration(seconds: float) -> Any:
    from builtin_interfaces.msg import Duration

    if not seconds >= 0:
        raise ValueError(f"lifetime must be >= 0 s, got {seconds}")
    ns = round(seconds * 1e9)
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _marker(marker_cls: type, header: Any, ns: str, track_id: int, kind: int, colour: Any, size: float,
            points_xy: list[tuple[float, float]], lifetime: Any) -> Any:
    from geometry_msgs.msg import Point

    m = marker_cls(header=header, ns=ns, id=marker_id(track_id), type=kind, action=marker_cls.ADD,
                   color=colour, points=[Point(x=x, y=y, z=0.0) for x, y in points_xy], lifetime=lifetime)
    m.pose.orientation.w = 1.0
    m.scale.x = m.scale.y = m.scale.z = size
    return m
