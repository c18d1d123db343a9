"""A camera's intrinsics as ``sensor_msgs/CameraInfo`` gives them (ROS-free; OpenCV for the lens model).

A camera_info describes two images (REP 104): the raw image (``image_raw``), with camera matrix ``K`` and
lens distortion ``D`` of model ``distortion_model``, and the rectified image (``image_rect``, what
image_proc makes), with the projection matrix ``P`` (its left 3 x 3) and no distortion. A detector that runs
on the raw image gives boxes in distorted pixels: to back-project a box's centre into a ray, the centre is
first undistorted (what image_geometry's ``rectifyPoint`` does) into the pixels of an ideal camera with the
same ``K``. A wide-angle lens moves a point near the image's edge by tens of pixels, and its 3D position by
as many percent; a camera with zero ``D`` or rectified images needs none of it.

Distortion models (the names camera_calibration and the camera drivers write): ``plumb_bob`` (k1, k2, p1,
p2, k3), ``rational_polynomial`` (k1, k2, p1, p2, k3, k4, k5, k6), both through ``cv2.undistortPointsIter``,
and ``equidistant`` (the fisheye k1-k4) through ``cv2.fisheye.undistortPoints``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ros2_tracker.cmc.gyro import calibrated_camera_matrix

__all__ = ["DISTORTION_MODELS", "CameraModel", "camera_model"]

DISTORTION_MODELS = {"plumb_bob": (4, 5), "rational_polynomial": (8,), "equidistant": (4,)}
"""The distortion models read, with the numbers of coefficients each may have."""

_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-9)  # (OpenCV's default: 5 steps)
_STEP_S = 0.05  # the time step of the velocities' central difference [s]


@dataclass(frozen=True)
class CameraModel:
    """The camera matrix of the image the boxes are in and its lens distortion (none: ``model`` "")."""

    matrix: np.ndarray
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(0))
    model: str = ""

    @property
    def distorted(self) -> bool:
        """Whether pixels need undistorting before back-projection."""
        return bool(self.model) and bool(np.any(self.distortion))

    def undistort(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) pixels of the image -> (N, 2) pixels of an ideal camera with the same matrix and no lens
        distortion (the identity without distortion). Non-finite rows stay non-finite."""
        pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        if not self.distorted or not len(pts):
            return pts.copy()
        finite = np.isfinite(pts).all(axis=1)
        out = np.full_like(pts, np.nan)
        src = pts[finite].reshape(-1, 1, 2)
        if len(src):
            if self.model == "equidistant":
                ideal = cv2.fisheye.undistortPoints(src, self.matrix, self.distortion, P=self.matrix,
                                                    criteria=_CRITERIA)
            else:
                ideal = cv2.undistortPointsIter(src, self.matrix, self.distortion, None, self.matrix,
                                                _CRITERIA)
            out[finite] = ideal.reshape(-1, 2)
        return out

    def undistort_motion(self, pixels: np.ndarray, velocities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) pixels moving at (N, 2) velocities [px/s] -> their undistorted pixels and velocities (a
        central difference over +-``_STEP_S`` of the motion: the lens bends a path near the edge)."""
        pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        vel = np.asarray(velocities, dtype=np.float64).reshape(-1, 2)
        if not self.distorted:
            return pts.copy(), vel.copy()
        ahead, behind = self.undistort(pts + _STEP_S * vel), self.undistort(pts - _STEP_S * vel)
        return self.undistort(pts), (ahead - behind) / (2 * _STEP_S)


def camera_model(k: np.ndarray | list[float], d: np.ndarray | list[float] = (), distortion_model: str = "",
                 p: np.ndarray | list[float] | None = None, *, rectified: bool = False) -> CameraModel:
    """The model of the image the boxes are in, from a camera_info's ``k``, ``d``, ``distortion_model`` and
    ``p``: the raw image's (K and D) or, with ``rectified``, the rectified image's (P's left 3 x 3, no
    distortion).

    Raises:
        ValueError: a matrix that is not finite or has no positive focal lengths (an uncalibrated camera's
            zeros; the message names it); non-finite distortion coefficients; a distortion model not read
            here, or with a number of coefficients it does not have, when its coefficients are not all zero.
    """
    if rectified:
        proj = np.asarray(p if p is not None else (), dtype=np.float64)
        if proj.size != 12:
            raise ValueError(f"the projection matrix P needs 12 values, got {proj.size}")
        return CameraModel(calibrated_camera_matrix(proj.reshape(3, 4)[:, :3], "P"))
    matrix = calibrated_camera_matrix(k)
    coeffs = np.asarray(d, dtype=np.float64).ravel()
    if not np.isfinite(coeffs).all():
        raise ValueError(f"the distortion coefficients D must be finite, got {coeffs.tolist()}")
    if not np.any(coeffs):  # none, or all zero: any model is the identity
        return CameraModel(matrix)
    sizes = DISTORTION_MODELS.get(distortion_model)
    if sizes is None:
        raise ValueError(f"distortion model {distortion_model!r} is not supported (supported: "
                         f"{', '.join(DISTORTION_MODELS)})")
    if coeffs.size not in sizes:
        raise ValueError(f"distortion model {distortion_model} has {' or '.join(map(str, sizes))} "
                         f"coefficients, D has {coeffs.size}")
    return CameraModel(matrix, coeffs, distortion_model)

