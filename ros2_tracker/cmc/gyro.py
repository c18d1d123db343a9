"""Camera rotation from a gyroscope (``sensor_msgs/Imu`` angular velocity) as an image warp.

A camera that turns (pan, tilt, roll) moves every static point of its image by the homography
``H = K R^T K^-1``: ``K`` is the camera's intrinsic matrix (``sensor_msgs/CameraInfo.k``) and ``R`` its
rotation from the previous frame to the current one, in the previous camera frame (optical: x right, y
down, z forward). Unlike translation, rotation needs no depth, and on a robot it is what moves the image
fastest (a turning base, a pan-tilt head): 30 deg/s is 10 px per frame at 30 Hz for a 640 px wide,
60 deg camera. The gyroscope measures it at hundreds of Hz without looking at the images, so it works on
the frames where image alignment (``ecc``) fails: motion blur, a crowd filling the image, a bare wall.

* :class:`GyroBuffer` keeps the recent angular velocities and integrates them between two stamps
  (linear between samples).
* :func:`rotation_homography` turns that rotation into ``H``, which the core tracker applies to each track
  at its own place (``Tracker.apply_camera_motion``): a pan moves the image's edges more than its centre
  (by ``1 + (x / f)^2``: a third more at the edge of a 60 deg view), which one affine warp for the whole image
  would get wrong by pixels.
* :data:`BODY_TO_OPTICAL` is the usual mounting: an IMU in the robot's body frame (REP 103: x forward,
  y left, z up) and a camera looking forward along x.

The translation of the camera (driving towards people) is not in it: that needs depth; the core tracker's
own common-motion estimate takes what is left.
"""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ["BODY_TO_OPTICAL", "GyroBuffer", "calibrated_camera_matrix", "camera_rotation",
           "rotation_homography"]

_FORGET_BATCH = 256  # GyroBuffer: samples older than keep_s are deleted this many (or half) at a time

# vectors in an IMU's body frame (x forward, y left, z up) -> the forward-looking camera's optical frame
# (x right, y down, z forward): x_cam = -y_body, y_cam = -z_body, z_cam = x_body
BODY_TO_OPTICAL = (0.0, -1.0, 0.0, 0.0, 0.0, -1.0, 1.0, 0.0, 0.0)


class GyroBuffer:
    """Recent angular velocities of one gyroscope, integrated between two stamps.

    Args:
        keep_s: samples older than this behind the newest are dropped (a batch at a time) [s].
        hold_s: an instant farther than this from every sample has no angular velocity [s]: an interval
            with a longer gap has no rotation (:meth:`rotation` returns None), rather than a guess. Within
            it, the rate is interpolated linearly between samples and held beyond the first and the last.
    """

    def __init__(self, keep_s: float = 5.0, hold_s: float = 0.1) -> None:
        if not (keep_s > 0 and hold_s >= 0):
            raise ValueError(f"keep_s must be > 0 and hold_s >= 0, got {keep_s}, {hold_s}")
        self.keep_s, self.hold_s = keep_s, hold_s
        self._t: list[float] = []  # stamps, increasing
        self._w: list[tuple[float, float, float]] = []  # angular velocities
        self.dropped = 0  # samples refused: not finite, or stamped before the newest (out of order)

    def __len__(self) -> int:
        return len(self._t)

    @property
    def newest(self) -> float | None:
        """Stamp of the newest sample [s] (None: none yet)."""
        return self._t[-1] if self._t else None

    def clear(self) -> None:
        """Forget every sample."""
        self._t.clear()
        self._w.clear()

    def add(self, stamp_s: float, angular_velocity: np.ndarray | tuple[float, float, float]) -> bool:
        """Add one sample (``angular_velocity`` [rad/s] about the gyro's x, y, z at ``stamp_s``); returns
        whether it was kept. A sample stamped more than ``keep_s`` before the newest starts over (a looped
        bag, a restarted driver); one stamped at or before the newest otherwise is out of order and dropped,
        as is a non-finite one."""
        wx, wy, wz = (float(v) for v in np.asarray(angular_velocity, dtype=np.float64).reshape(3))
        stamp_s = float(stamp_s)
        if not all(math.isfinite(v) for v in (stamp_s, wx, wy, wz)):
            self.dropped += 1
            return False
        if self._t:
            newest = self._t[-1]
            if stamp_s <= newest - self.keep_s:
                self.clear()
            elif stamp_s <= newest:
                self.dropped += 1
                return False
        self._t.append(stamp_s)
        self._w.append((wx, wy, wz))
        if self._t[0] < stamp_s - self.keep_s:  # forget the old ones, a batch at a time
            cut = bisect.bisect_left(self._t, stamp_s - self.keep_s)
            if 2 * cut >= len(self._t) or cut >= _FORGET_BATCH:
                del self._t[:cut], self._w[:cut]
        return True

    def rotation(self, t0: float, t1: float) -> np.ndarray | None:
        """The gyro frame's rotation from ``t0`` to ``t1``, in its frame at ``t0``: the (3, 3) matrix ``R``
        with ``v_t0 = R v_t1`` for a fixed vector's coordinates ``v``; the identity for ``t1 <= t0``. None
        when the samples do not cover the interval: some instant of it is more than ``hold_s`` from every
        sample (the IMU stopped, or has not yet sent what a late image needs)."""
        if t1 <= t0:
            return np.eye(3)
        t, hold = self._t, self.hold_s
        lo, hi = bisect.bisect_left(t, t0 - hold), bisect.bisect_right(t, t1 + hold)
        near = t[lo:hi]
        if not near or near[0] > t0 + hold or near[-1] < t1 - hold:
            return None
        if len(near) > 1 and max(b - a for a, b in itertools.pairwise(near)) > 2 * hold:
            return None
        # segments [t0, s_i), [s_i, s_i+1), ..., [s_k, t1) between the samples inside; the rate varies
        # linearly between samples (held before the first and after the last), so each segment turns at
        # the rate of its midpoint: exact for a rate that changes linearly (holding each sample until the
        # next would lag by half a sample period). Only the samples near the interval are read.
        first, last = max(lo - 1, 0), min(hi + 1, len(t))
        stamps, rates = np.array(t[first:last]), np.array(self._w[first:last])
        bounds = np.concatenate([[t0], stamps[(stamps > t0) & (stamps < t1)], [t1]])
        mids = 0.5 * (bounds[:-1] + bounds[1:])
        mid_rates = np.stack([np.interp(mids, stamps, rates[:, j]) for j in range(3)], axis=1)
        steps = Rotation.from_rotvec(mid_rates * np.diff(bounds)[:, None]).as_matrix()  # (k, 3, 3)
        rot = steps[0]
        for step in steps[1:]:
            rot = rot @ step
        return rot


def camera_rotation(gyro_rotation: np.ndarray, gyro_to_camera: np.ndarray) -> np.ndarray:
    """A rotation of the gyro's frame (:meth:`GyroBuffer.rotation`) as the camera's, in the camera's optical
    frame. ``gyro_to_camera``: the (3, 3) rotation taking vectors in the gyro's frame to the camera's
    (e.g. :data:`BODY_TO_OPTICAL`; the identity for a camera's own IMU that reports in its optical frame)."""
    c = np.asarray(gyro_to_camera, dtype=np.float64).reshape(3, 3)
    return c @ gyro_rotation @ c.T


def rotation_homography(k: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """The (3, 3) homography ``K R^T K^-1`` (previous frame's pixels -> current frame's) of a camera turning
    by ``rotation`` (:func:`camera_rotation`) with intrinsic matrix ``k`` (3, 3); the core tracker applies it
    to each track at its own place (``Tracker.apply_camera_motion``).

    Raises:
        ValueError: ``k`` is not a calibrated camera matrix (:func:`calibrated_camera_matrix`).
    """
    k = calibrated_camera_matrix(k)
    return k @ np.asarray(rotation, dtype=np.float64).T @ np.linalg.inv(k)


def calibrated_camera_matrix(k: np.ndarray | list[float], name: str = "K") -> np.ndarray:
    """``k`` (9 values, row by row, as ``sensor_msgs/CameraInfo.k``) as a (3, 3) camera matrix; ``name``
    names it in the error.

    Raises:
        ValueError: not finite, or without positive focal lengths (an uncalibrated camera's zeros).
    """
    k = np.asarray(k, dtype=np.float64).reshape(3, 3)
    if not (np.isfinite(k).all() and k[0, 0] > 0 and k[1, 1] > 0 and k[2, 2] != 0):
        raise ValueError(f"the camera matrix {name} needs positive focal lengths (is the camera "
                         f"calibrated?), got fx={k[0, 0]:g}, fy={k[1, 1]:g}")
    return k
