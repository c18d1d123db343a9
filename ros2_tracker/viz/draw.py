"""Drawing of tracks, detections and predicted trajectories on BGR images (pure functions, OpenCV).

Every function returns a new image and leaves its input untouched. Colours come from
:func:`colour_for_id`, a hash of the id alone, so one id has the same colour in every frame, run
and process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import cv2
import numpy as np

from ros2_tracker.core.track import TrackState
from ros2_tracker.viz.colours import colour_for_id

__all__ = ["colour_for_id", "distance_labels", "draw_detections", "draw_tracks"]


def _reach(img: np.ndarray) -> float:
    """How far outside the image anything is drawn [px]: two image sizes."""
    return 2.0 * max(img.shape[:2])


def _within_reach(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Coordinates [px] clipped to two image sizes around the image: what lies further out is off the
    picture anyway, and OpenCV's int32 points (and a dashed outline's loop) must stay bounded."""
    reach = _reach(img)
    h, w = img.shape[:2]
    xy = np.array(xy, dtype=np.float64)
    xy[..., 0] = np.clip(xy[..., 0], -reach, w + reach)
    xy[..., 1] = np.clip(xy[..., 1], -reach, h + reach)
    return xy


def _faded(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(int(0.6 * c + 0.4 * 128) for c in colour)  # type: ignore[return-value]


def _dashed_rectangle(img: np.ndarray, p0: tuple[int, int], p1: tuple[int, int],
                      colour: tuple[int, int, int], thickness: int, dash: int = 8) -> None:
    (x0, y0), (x1, y1) = p0, p1
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    for (ax, ay), (bx, by) in pairwise(corners):
        length = max(abs(bx - ax), abs(by - ay))
        for start in range(0, length, 2 * dash):
            t0, t1 = start / max(length, 1), min(start + dash, length) / max(length, 1)
            cv2.line(img, (round(ax + t0 * (bx - ax)), round(ay + t0 * (by - ay))),
                     (round(ax + t1 * (bx - ax)), round(ay + t1 * (by - ay))), colour, thickness)


def _label(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    """Text on a filled box whose bottom-left is at (x, y), kept inside the image."""
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x = int(np.clip(x, 0, max(0, img.shape[1] - tw - 4)))
    y = int(np.clip(y, th + base + 2, img.shape[0]))
    cv2.rectangle(img, (x, y - th - base - 2), (x + tw + 4, y), colour, -1)
    dark = sum(colour) > 3 * 140
    cv2.putText(img, text, (x + 2, y - base), font, scale, (0, 0, 0) if dark else (255, 255, 255),
                thick, cv2.LINE_AA)


def _ellipse_axes(cov3: np.ndarray) -> tuple[float, float, float]:
    """1-sigma half axes [px] and angle [deg] of a (var_x, cov_xy, var_y) covariance."""
    c = np.array([[cov3[0], cov3[1]], [cov3[1], cov3[2]]], dtype=np.float64)
    vals, vecs = np.linalg.eigh(c)
    vals = np.sqrt(np.clip(vals, 0.0, None))
    angle = float(np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1])))
    return float(vals[1]), float(vals[0]), angle


def _draw_trajectory(img: np.ndarray, start: np.ndarray, points: np.ndarray, cov: np.ndarray | None,
                     colour: tuple[int, int, int]) -> None:
    pts = np.vstack([start[None], points]) if len(points) else start[None]
    finite = np.isfinite(pts).all(axis=1)
    pts = _within_reach(img, pts[finite])
    if len(pts) >= 2:
        cv2.polylines(img, [np.round(pts * 4).astype(np.int32)], False, colour, 1, cv2.LINE_AA, 2)
    for p in pts[1:]:
        cv2.circle(img, (round(p[0]), round(p[1])), 2, colour, -1)
    if cov is not None and len(points) and np.isfinite(cov[-1]).all() and finite[-1]:
        a, b, angle = _ellipse_axes(cov[-1])
        a, b = min(a, _reach(img)), min(b, _reach(img))  # (an ellipse larger covers the picture anyway)
        end = pts[-1]  # the last predicted centre, within reach
        centre = (round(end[0] * 4), round(end[1] * 4))
        axes = (max(1, round(a * 4)), max(1, round(b * 4)))
        cv2.ellipse(img, centre, axes, angle, 0, 360, colour, 1, cv2.LINE_AA, 2)


def draw_tracks(image: np.ndarray, ids: Sequence[int] | np.ndarray, boxes_xyxy: np.ndarray,
                states: Sequence[int] | np.ndarray | None = None, trajectories: np.ndarray | None = None,
                trajectory_cov: np.ndarray | None = None, labels: Sequence[str] | None = None, *,
                thickness: int = 2) -> np.ndarray:
    """Draw tracks: boxes in their id colour, id labels and predicted trajectories.

    Confirmed tracks get solid boxes, tentative ones thin boxes, lost ones (``TrackState.LOST``)
    dashed boxes in a faded colour.

    Args:
        image: (H, W, 3) uint8 BGR image (not modified).
        ids: (N,) integer track ids.
        boxes_xyxy: (N, 4) boxes [px].
        states: (N,) ``TrackState`` values; all confirmed when None.
        trajectories: (N, K, 2) predicted future centres [px], drawn as a polyline from the box centre.
        trajectory_cov: (N, K, 3) (var_x, cov_xy, var_y) [px^2]; the 1-sigma ellipse of the last
            point is drawn.
        labels: (N,) texts; ``str(id)`` when None.
        thickness: line width of confirmed boxes [px].

    Returns:
        A new (H, W, 3) uint8 image.

    Raises:
        ValueError: the image is not (H, W, 3) uint8 or the arrays' lengths differ.
    """
    out = _checked_copy(image)
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    ids_a = np.asarray(ids).reshape(-1)
    st = np.ones(n, dtype=np.int64) if states is None else np.asarray(states).reshape(-1)
    for name, arr in (("ids", ids_a), ("states", st), ("trajectories", trajectories),
                      ("trajectory_cov", trajectory_cov), ("labels", labels)):
        if arr is not None and len(arr) != n:
            raise ValueError(f"{name} has {len(arr)} rows, boxes_xyxy has {n}")
    for i in range(n):
        if not np.isfinite(boxes[i]).all():
            continue
        colour = colour_for_id(int(ids_a[i]))
        lost = int(st[i]) == TrackState.LOST
        if lost:
            colour = _faded(colour)
        x0, y0, x1, y1 = _within_reach(out, boxes[i].reshape(2, 2)).reshape(4)
        p0, p1 = (round(x0), round(y0)), (round(x1), round(y1))
        if lost:
            _dashed_rectangle(out, p0, p1, colour, max(1, thickness - 1))
        else:
            cv2.rectangle(out, p0, p1, colour, 1 if int(st[i]) == TrackState.TENTATIVE else thickness)
        if trajectories is not None:
            centre = 0.5 * (boxes[i, :2] + boxes[i, 2:])
            cov = None if trajectory_cov is None else np.asarray(trajectory_cov[i], dtype=np.float64)
            _draw_trajectory(out, centre, np.asarray(trajectories[i], dtype=np.float64).reshape(-1, 2),
                             cov, colour)
        _label(out, str(int(ids_a[i])) if labels is None else str(labels[i]), p0[0], p0[1], colour)
    return out


def distance_labels(ids: Sequence[int] | np.ndarray, positions: np.ndarray,
                    velocities: np.ndarray | None = None) -> list[str]:
    """Labels for :func:`draw_tracks` with each track's distance along the camera's axis: ``"7  3.2 m"`` for a
    track with a (N, 3) ``positions`` row (x, y, z [m]), ``"7"`` for one whose row is NaN; with (N, 3)
    ``velocities`` [m/s], its speed after it where known: ``"7  3.2 m  1.1 m/s"``."""
    z = np.asarray(positions, dtype=np.float64).reshape(-1, 3)[:, 2].tolist()
    labels = [f"{int(i)}  {d:.1f} m" if math.isfinite(d) else str(int(i))
              for i, d in zip(ids, z, strict=True)]
    if velocities is None:
        return labels
    speeds = np.linalg.norm(np.asarray(velocities, dtype=np.float64).reshape(-1, 3), axis=1).tolist()
    return [f"{text}  {v:.1f} m/s" if math.isfinite(v) and math.isfinite(d) else text
            for text, v, d in zip(labels, speeds, z, strict=True)]


def draw_detections(image: np.ndarray, boxes_xyxy: np.ndarray, scores: np.ndarray | None = None, *,
                    colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Draw detections as thin boxes with their score (two decimals) at the bottom-left corner.

    Args:
        image: (H, W, 3) uint8 BGR image (not modified).
        boxes_xyxy: (N, 4) boxes [px].
        scores: (N,) scores, not drawn when None.
        colour: BGR box colour.

    Returns:
        A new (H, W, 3) uint8 image.
    """
    out = _checked_copy(image)
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    for i, b in enumerate(boxes):
        if not np.isfinite(b).all():
            continue
        b = _within_reach(out, b.reshape(2, 2)).reshape(4)
        cv2.rectangle(out, (round(b[0]), round(b[1])), (round(b[2]), round(b[3])), colour, 1)
        if scores is not None:
            cv2.putText(out, f"{float(scores[i]):.2f}", (round(b[0]) + 2, round(b[3]) - 3),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA)
    return out


def _checked_copy(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 BGR image, got {img.shape} {img.dtype}")
    return img.copy()
