"""A camera's intrinsics as ``sensor_msgs/CameraInfo`` gives them (ROS-free; OpenCV for the lens model).

A camera_info describes two images (REP 104): the raw image (``image_raw``), with camera matrix ``K`` and
lens distortion ``D`` of model ``distortion_model``, and the rectified image (``image_rect``, what
image_proc makes), with the projection matrix ``P`` (its left 3 x 3) and no distortion. A detector that runs
on the raw image gives boxes in distorted pixels: to back-project a box's centre into a ray, the centre is
first undistorted (what image_geometry's ``rectifyPoint`` does) into the pixels of an ideal camera with the
same ``K``. A wide-angle lens moves a point near the image's edge by tens of pixels, and its 3D position by
as many percent; a camera with zero ``D`` or rectified images needs none of it.

Distortion models (the names camera_calibration and the camera drivers write): ``plumb_bob`` and
``rational_polynomial`` (k1, k2, p1, p2[, k3[, k4, k5, k6[, s1-s4[, tx, ty]]]]: 4, 5, 8, 12 or 14
coefficients, as OpenCV reads them), through ``cv2.undistortPointsIter``; ``equidistant`` (the fisheye
k1-k4; further coefficients must be zero), through ``cv2.fisheye.undistortPoints``. The lens works on
normalised coordinates, which ``K`` (skew included) maps to pixels. Each undistorted point is projected
back through the lens: where that misses the pixel it came from (beyond the lens model's reach, past 90
degrees of a fisheye), the point gets NaN rather than a wrong ray.

A camera_info with ``binning_x`` / ``binning_y`` above 1 or a region of interest describes a smaller image
than its calibration's: as image_geometry does, the boxes' pixels are taken to the full sensor's (times the
binning, plus the region's offset) for the lens, and the camera matrix of the image the boxes are in is the
calibration's shifted by the offset and divided by the binning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from ros2_tracker.cmc.gyro import calibrated_camera_matrix
from ros2_tracker.core.depth import normalised

__all__ = ["DISTORTION_MODELS", "CameraModel", "camera_model"]

DISTORTION_MODELS = {"plumb_bob": (4, 5, 8, 12, 14), "rational_polynomial": (4, 5, 8, 12, 14),
                     "equidistant": (4,)}
"""The distortion models read, with the numbers of coefficients each may have (equidistant: more, if zero)."""

_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-12)  # (OpenCV's default: 5 steps)
_MAX_MISS_PX = 0.01  # an undistorted point that projects back further than this from its pixel: none
_STEP_PX = 0.5  # the velocities' central difference moves each point by this much either way [px]
_MAX_STEP_S = 0.05  # (and by at most this much time, for slow points)
_IDENTITY = np.eye(3)


@dataclass(frozen=True)
class CameraModel:
    """The camera matrix of the image the boxes are in and its lens distortion (none: ``model`` "").

    Attributes:
        matrix: (3, 3) camera matrix of the image the boxes are in (binning and region applied).
        distortion: the lens's coefficients (``model``'s).
        model: the distortion model's name; "" for none.
        size: (width, height) of the image the boxes are in [px] (0: not given).
        sensor: (3, 3) the calibration's own camera matrix (full sensor), which the lens works with.
        binning: (bx, by) sensor pixels per image pixel.
        offset: (x, y) the region of interest's offset in sensor pixels.
    """

    matrix: np.ndarray
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(0))
    model: str = ""
    size: tuple[int, int] = (0, 0)
    sensor: np.ndarray | None = None
    binning: tuple[int, int] = (1, 1)
    offset: tuple[int, int] = (0, 0)

    @property
    def distorted(self) -> bool:
        """Whether pixels need undistorting before back-projection."""
        return bool(self.model) and bool(np.any(self.distortion))

    def describe(self) -> str:
        """One line for a log: the camera matrix of the boxes' image, its size and the lens, e.g. ``fx 520.0
        fy 515.0 cx 330.0 cy 236.0, 640 x 480, lens plumb_bob (5 coefficients)``."""
        (fx, skew, cx), (_, fy, cy) = self.matrix[0], self.matrix[1]
        text = f"fx {fx:.1f} fy {fy:.1f} cx {cx:.1f} cy {cy:.1f}" + (f" skew {skew:.2f}" if skew else "")
        text += f", {self.size[0]} x {self.size[1]}" if all(self.size) else ", image size not given"
        if self.binning != (1, 1) or self.offset != (0, 0):
            (bx, by), (ox, oy) = self.binning, self.offset
            text += f" (binning {bx} x {by}, offset {ox}, {oy})"
        if self.distorted:
            return text + f", lens {self.model} ({len(self.distortion)} coefficients)"
        return text + ", no lens distortion"

    def undistort(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) pixels of the image -> (N, 2) pixels of an ideal camera with :attr:`matrix` and no lens
        distortion (the identity without distortion). Non-finite rows, and points the lens model cannot
        take back (see the module docstring), come back NaN."""
        return self._finite_rows(pixels, self._undistorted)

    def distort(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) pixels of the ideal camera (:attr:`matrix`, no lens) -> (N, 2) pixels of the image, through
        the lens: :meth:`undistort`'s inverse (the identity without distortion); non-finite rows stay NaN."""
        return self._finite_rows(pixels, self._distorted)

    def _finite_rows(self, pixels: np.ndarray, rows: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``rows`` applied to the finite rows of (N, 2) ``pixels`` (NaN elsewhere); a copy without lens."""
        pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        if not self.distorted or not len(pts):
            return pts.copy()
        out = np.full_like(pts, np.nan)
        finite = np.flatnonzero(np.isfinite(pts).all(axis=1))
        if len(finite):
            out[finite] = rows(pts[finite])
        return out

    def _sensor(self) -> np.ndarray:
        """The calibration's own camera matrix, which the lens works with."""
        return self.sensor if self.sensor is not None else self.matrix

    def _through_lens(self, ideal: np.ndarray) -> np.ndarray:
        """(M, 2) undistorted normalised coordinates -> (M, 2) distorted ones, by the lens model."""
        if self.model == "equidistant":
            seen = cv2.fisheye.distortPoints(ideal.reshape(-1, 1, 2), _IDENTITY, self.distortion[:4])
        else:
            rays = np.column_stack([ideal, np.ones(len(ideal))])
            seen = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), _IDENTITY, self.distortion)[0]
        return seen.reshape(-1, 2)

    def _undistorted(self, pts: np.ndarray) -> np.ndarray:
        sensor = self._sensor()
        full = pts * self.binning + self.offset  # the sensor's pixels, which the calibration is of
        seen = normalised(full, sensor)  # distorted normalised coordinates (skew included)
        if self.model == "equidistant":
            ideal = cv2.fisheye.undistortPoints(seen.reshape(-1, 1, 2), _IDENTITY, self.distortion[:4],
                                                P=_IDENTITY, criteria=_CRITERIA).reshape(-1, 2)
        else:
            ideal = cv2.undistortPointsIter(seen.reshape(-1, 1, 2), _IDENTITY, self.distortion, None,
                                            _IDENTITY, _CRITERIA).reshape(-1, 2)
        miss = np.hypot(*((self._through_lens(ideal) - seen) * [sensor[0, 0], sensor[1, 1]]).T)
        good = np.isfinite(ideal).all(axis=1) & (miss <= _MAX_MISS_PX)
        out = np.full_like(pts, np.nan)
        out[good] = _pixels(ideal[good], self.matrix)
        return out

    def _distorted(self, pts: np.ndarray) -> np.ndarray:
        full = _pixels(self._through_lens(normalised(pts, self.matrix)), self._sensor())  # sensor pixels
        return (full - self.offset) / self.binning

    def warp_affines(self, homography: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(N, 2, 3) affine warps that follow a (3, 3) ``homography`` of the ideal camera's pixels (a
        turning camera's ``K R^T K^-1``) in this image's pixels at (N, 2) ``points``, to first order: the
        map undistort -> homography -> distort, linearised at each point (central differences of
        ``_STEP_PX``). Without distortion, :func:`~ros2_tracker.core.kalman.local_affines` itself; a
        point the lens cannot take back gets that pinhole warp; a point turned 90 degrees or more off the
        axis gets NaN (as there)."""
        from ros2_tracker.core.kalman import local_affines

        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        h = np.asarray(homography, dtype=np.float64).reshape(3, 3)
        pinhole = local_affines(h, pts)
        if not self.distorted or not len(pts):
            return pinhole
        d = _STEP_PX
        dx, dy = np.array([d, 0.0]), np.array([0.0, d])
        probes = np.concatenate([pts, pts + dx, pts - dx, pts + dy, pts - dy])
        ideal = self.undistort(probes)
        hom = ideal @ h[:, :2].T + h[:, 2]
        with np.errstate(invalid="ignore", divide="ignore"):
            ahead = hom[:, 2] > 1e-9 * np.abs(hom[:, :2]).max(axis=1, initial=1.0)
            moved = self.distort(np.where(ahead[:, None], hom[:, :2] / hom[:, 2:], np.nan))
        here, xp, xm, yp, ym = np.split(moved, 5)
        jac = np.stack([(xp - xm) / (2 * d), (yp - ym) / (2 * d)], axis=2)  # (N, 2, 2): d out / d (x, y)
        out = np.concatenate([jac, (here - np.einsum("nij,nj->ni", jac, pts))[:, :, None]], axis=2)
        lens_failed = ~np.isfinite(out).all(axis=(1, 2))
        out[lens_failed] = pinhole[lens_failed]  # (NaN there too where the turn put the point behind)
        return out

    def undistort_motion(self, pixels: np.ndarray, velocities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) pixels moving at (N, 2) velocities [px/s] -> their undistorted pixels and velocities (a
        central difference over ``_STEP_PX`` of the motion either way: the lens bends a path near the
        edge); NaN rows where the pixel or its velocity is not finite or cannot be undistorted."""
        pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        vel = np.asarray(velocities, dtype=np.float64).reshape(-1, 2)
        if not self.distorted:
            return pts.copy(), vel.copy()
        with np.errstate(invalid="ignore", over="ignore"):
            step = np.minimum(_MAX_STEP_S, _STEP_PX / np.hypot(vel[:, 0], vel[:, 1]))[:, None]
            here, ahead, behind = np.split(self.undistort(np.concatenate([pts, pts + step * vel,
                                                                           pts - step * vel])), 3)
            return here, (ahead - behind) / (2 * step)


def _pixels(normalised: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(N, 2) normalised coordinates -> pixels through ``k``."""
    x, y = normalised[:, 0], normalised[:, 1]
    return np.column_stack([k[0, 0] * x + k[0, 1] * y + k[0, 2], k[1, 1] * y + k[1, 2]])


def camera_model(k: np.ndarray | list[float], d: np.ndarray | list[float] = (), distortion_model: str = "",
                 p: np.ndarray | list[float] | None = None, *, rectified: bool = False,
                 size: tuple[int, int] = (0, 0), binning: tuple[int, int] = (0, 0),
                 roi: tuple[int, int, int, int] = (0, 0, 0, 0)) -> CameraModel:
    """The model of the image the boxes are in, from a camera_info's ``k``, ``d``, ``distortion_model``,
    ``p``, ``width`` and ``height`` (``size``), ``binning_x`` and ``binning_y`` (``binning``; 0 or 1: none)
    and ``roi`` (x_offset, y_offset, width, height; all 0: the whole image): the raw image's (K and D) or,
    with ``rectified``, the rectified image's (P's left 3 x 3, no distortion).

    Raises:
        ValueError: a matrix that is not finite, has no positive focal lengths (an uncalibrated camera's
            zeros; the message names it) or another last row than 0 0 1; non-finite distortion
            coefficients; a distortion model not read here, or with a number of coefficients it does not
            have, when its coefficients are not all zero.
    """
    bx, by = (max(1, int(b)) for b in binning)
    x_off, y_off, roi_w, roi_h = (int(v) for v in roi)
    width, height = size
    if roi_w and roi_h:
        width, height = roi_w, roi_h
    size = (width // bx, height // by)
    if rectified:
        proj = np.asarray(p if p is not None else (), dtype=np.float64)
        if proj.size != 12:
            raise ValueError(f"the projection matrix P needs 12 values, got {proj.size}")
        sensor = _checked(proj.reshape(3, 4)[:, :3], "P")
        return CameraModel(_reduced(sensor, bx, by, x_off, y_off), size=size)
    sensor = _checked(np.asarray(k, dtype=np.float64).reshape(3, 3), "K")
    matrix = _reduced(sensor, bx, by, x_off, y_off)
    coeffs = np.asarray(d, dtype=np.float64).ravel()
    if not np.isfinite(coeffs).all():
        raise ValueError(f"the distortion coefficients D must be finite, got {coeffs.tolist()}")
    if not np.any(coeffs):  # none, or all zero: any model is the identity
        return CameraModel(matrix, size=size)
    sizes = DISTORTION_MODELS.get(distortion_model)
    if sizes is None:
        raise ValueError(f"distortion model {distortion_model!r} is not supported (supported: "
                         f"{', '.join(DISTORTION_MODELS)})")
    if distortion_model == "equidistant" and coeffs.size > 4 and not np.any(coeffs[4:]):
        coeffs = coeffs[:4]  # a driver's 5 values for 4 (a RealSense-style D resized to 5)
    if coeffs.size not in sizes:
        counts = " or ".join(", ".join(map(str, sizes)).rsplit(", ", 1))
        raise ValueError(f"distortion model {distortion_model} has {counts} coefficients, D has "
                         f"{coeffs.size}")
    return CameraModel(matrix, coeffs, distortion_model, size, sensor, (bx, by), (x_off, y_off))


def _checked(matrix: np.ndarray, name: str) -> np.ndarray:
    """A calibrated camera matrix whose last row is 0 0 1 (ValueError otherwise, naming it)."""
    matrix = calibrated_camera_matrix(matrix.ravel(), name)
    if not np.allclose(matrix[2], [0.0, 0.0, 1.0], atol=1e-9):
        raise ValueError(f"the camera matrix {name}'s last row must be 0 0 1, got {matrix[2].tolist()}")
    return matrix


def _reduced(matrix: np.ndarray, bx: int, by: int, x_off: int, y_off: int) -> np.ndarray:
    """The camera matrix of a region of the sensor at ``(x_off, y_off)``, binned ``bx`` x ``by``."""
    out = matrix.copy()
    out[0, 2] -= x_off
    out[1, 2] -= y_off
    out[0] /= bx
    out[1] /= by
    return out
