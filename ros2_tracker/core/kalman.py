"""Constant-velocity Kalman filter, batched over all tracks, with time steps from timestamps.

State per track: ``mean[8] = [cx, cy, w, h, vcx, vcy, vw, vh]`` (pixels, pixels per second).
The motion model is the continuous white-noise-acceleration model per coordinate, plus a small
position random walk; the measurement is the box ``[cx, cy, w, h]``. With diagonal noise the
8-D covariance is exactly block-diagonal in the four (position, velocity) pairs, so it is kept
as ``cov[N, 4, 3] = [var_p, cov_pv, var_v]`` per coordinate: every step below is elementwise over
(tracks x coordinates), with no per-track Python loop and no 8x8 matrix products. ``full_covariance``
expands it to the usual (N, 8, 8) form (tests compare against the textbook matrix filter).

Noise is relative to the box height (a near person moves more pixels than a far one) and given
per second, so the same settings hold at 7 fps and at 30 fps, and with dropped frames.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

__all__ = [
    "MotionNoise",
    "full_covariance",
    "initiate",
    "local_affines",
    "mahalanobis_sq",
    "predict",
    "predict_trajectory",
    "update",
    "warp_affine",
]

# 95 % quantile of the chi-square distribution with 4 degrees of freedom (box measurement).
CHI2_95_4DOF = 9.4877


class MotionNoise(NamedTuple):
    """Noise levels relative to box height.

    Attributes:
        measurement: measurement standard deviation [fraction of height].
        velocity: white-noise acceleration spectral density, sqrt [fraction of height / s^1.5].
        position: position random-walk spectral density, sqrt [fraction of height / s^0.5].
        initial_velocity: standard deviation of an unknown initial velocity [fraction of height / s].
    """

    measurement: float = 0.1
    velocity: float = 0.5
    position: float = 0.1
    initial_velocity: float = 1.0


_ONE = np.array(1.0)  # a 0-d array: ufuncs convert a Python float scalar on every call


def _heights(mean: np.ndarray) -> np.ndarray:
    return np.maximum(mean[:, 3], _ONE)


def measurement_var(boxes: np.ndarray, noise: MotionNoise) -> np.ndarray:
    """(N,1) measurement variance of boxes (cx, cy, w, h, ...), the same for the four coordinates."""
    return (noise.measurement * noise.measurement) * np.square(np.maximum(boxes[:, 3:4], 1.0))


def initiate(boxes_cxcywh: np.ndarray, noise: MotionNoise) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from (N,4) measured boxes: zero velocity with a wide velocity prior."""
    n = len(boxes_cxcywh)
    mean = np.zeros((n, 8))
    mean[:, :4] = boxes_cxcywh
    h = _heights(mean)
    cov = np.zeros((n, 4, 3))
    cov[:, :, 0] = ((noise.measurement * h) ** 2)[:, None]
    cov[:, :, 2] = ((noise.initial_velocity * h) ** 2)[:, None]
    return mean, cov


def _process_noise(dt: float | np.ndarray, velocity: float, position: float) -> tuple:
    """Q(dt) entries (qpp, qpv, qvv) per unit squared box height (the continuous white-noise-acceleration
    model of density ``velocity`` plus a position random walk of density ``position``; see
    :class:`MotionNoise`), for a float time step (floats) or an array of them (arrays)."""
    qa = velocity**2
    return (qa * dt**3 / 3.0 + position**2 * dt, qa * dt**2 / 2.0, qa * dt)


def _step_map_parts() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Constant parts of the step maps, which are polynomials in dt: F^T = I + dt E, and the covariance map
    M0 + dt M1 + dt^2 M2 (per coordinate ``pp + 2 dt pv + dt^2 vv``, ``pv + dt vv``, ``vv``)."""
    e = np.zeros((8, 8))
    e[4:, :4] = np.eye(4)  # F^T: position += dt * velocity
    m0, m1, m2 = np.zeros((12, 12)), np.zeros((12, 12)), np.zeros((12, 12))
    for i in range(0, 12, 3):  # one (3,3) block per coordinate, transposed: out[j] = sum_k cov[k] m[k, j]
        m0[i:i + 3, i:i + 3] = np.eye(3)
        m1[i + 1, i], m1[i + 2, i + 1] = 2.0, 1.0
        m2[i + 2, i] = 1.0
    parts = (np.eye(8), e, m0, m1, m2)
    for a in parts:
        a.flags.writeable = False
    return parts


_EYE8, _F_DT, _M0, _M1, _M2 = _step_map_parts()


@functools.lru_cache(maxsize=64)
def _step_maps(dt: float, velocity: float, position: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The maps of one prediction step, read-only: the (8,8) state transition F, transposed; the (12,12)
    map of the covariance's (pp, pv, vv) entries of the four coordinates, flattened, under F (block
    diagonal; one small product for all tracks); and the process noise Q(dt) of those 12 entries per unit
    squared box height (as :func:`_process_noise`).

    Cached by the process noise alone (a tracker may adapt its measurement noise from frame to frame):
    offline, a sequence's frame interval repeats. Live camera stamps jitter, so every frame may
    bring a new dt: building the maps is a few small array operations, not a matrix assembly.
    """
    f_t = _EYE8 + dt * _F_DT
    m12 = _M0 + dt * _M1 + (dt * dt) * _M2
    q12 = np.array(_process_noise(dt, velocity, position) * 4)
    for a in (f_t, m12, q12):
        a.flags.writeable = False
    return f_t, m12, q12


def predict(mean: np.ndarray, cov: np.ndarray, dt: float,
            noise: MotionNoise) -> tuple[np.ndarray, np.ndarray]:
    """Move every track ``dt`` >= 0 seconds ahead (all tracks share the frame's time step). Returns new
    arrays."""
    f_t, m12, q12 = _step_maps(float(dt), noise.velocity, noise.position)
    h = _heights(mean)
    out_mean = mean.dot(f_t)
    out_cov = cov.reshape(-1, 12).dot(m12)
    out_cov += np.multiply.outer(h * h, q12)
    lo = out_mean[:, 2:4]
    np.maximum(lo, _ONE, out=lo)  # a box never shrinks below a pixel
    return out_mean, out_cov.reshape(-1, 4, 3)


# (pp, pv, vv) -= (kp * pp, kp * pv, kv * pv): which gain and which entry each covariance entry uses
# (``take`` with constant indices is several times cheaper than fancy indexing on small arrays)
_GAIN_OF_COV = np.array([0, 0, 1])
_COV_OF_COV = np.array([0, 1, 1])


def update(mean: np.ndarray, cov: np.ndarray, boxes_cxcywh: np.ndarray, meas_var: np.ndarray,
           robust_sigma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Correct (N,) tracks with (N,4) measured boxes of (N,4) or (N,1) variances. Returns new arrays.

    ``robust_sigma`` > 0: a robust (Huber) update. Where a box's height is ``e`` > ``robust_sigma``
    standard deviations of its innovation from the prediction, that box's innovation covariance grows
    by (``e / robust_sigma`` - 1) times the height's innovation variance, in every coordinate, so its
    height correction is no larger than a ``robust_sigma``-deviation's (bounded influence). The height is
    the coordinate to test: neither an object's nor the camera's motion changes it much from frame to
    frame, while a partial detection (a head, an upper body) or one box around two people does.
    """
    s = cov[:, :, :1] + meas_var[..., None]  # (N,4,1): innovation variances
    innov = boxes_cxcywh - mean[:, :4]
    if robust_sigma > 0:
        s = _huber_inflate(s, innov[:, 3], robust_sigma)
    gain = cov[:, :, :2] / s  # (N,4,2): position, velocity gains
    out_mean = mean + (gain * innov[..., None]).transpose(0, 2, 1).reshape(-1, 8)
    out_cov = cov - gain.take(_GAIN_OF_COV, axis=2) * cov.take(_COV_OF_COV, axis=2)
    return out_mean, out_cov


def _huber_inflate(s: np.ndarray, innov_h: np.ndarray, sigma: float) -> np.ndarray:
    """Innovation variances ``s`` (N,4,1) of a robust update (see :func:`update`); ``s`` itself when no
    height innovation ``innov_h`` (N,) is beyond ``sigma`` standard deviations (the common case)."""
    s_h = s[:, 3, 0]
    e2 = innov_h * innov_h
    e2 /= s_h  # squared standard deviations
    if not (e2 > sigma * sigma).any():  # no outlier (an empty batch included)
        return s
    excess = np.sqrt(e2)
    excess /= sigma
    excess -= 1.0
    np.maximum(excess, 0.0, out=excess)
    return s + (excess * s_h)[:, None, None]


def mahalanobis_sq(mean: np.ndarray, cov: np.ndarray, boxes_cxcywh: np.ndarray,
                   meas_var: np.ndarray, dims: int = 4) -> np.ndarray:
    """(T,D) squared Mahalanobis distance of D boxes to T predicted tracks (first ``dims`` coords).

    ``meas_var`` is (D,4): the detections' measurement variances.
    """
    s = cov[:, None, :dims, 0] + meas_var[None, :, :dims]
    diff = boxes_cxcywh[None, :, :dims] - mean[:, None, :dims]
    return np.einsum("tdc,tdc->td", diff, diff / s)


def predict_trajectory(mean: np.ndarray, cov: np.ndarray, times: np.ndarray,
                       noise: MotionNoise) -> tuple[np.ndarray, np.ndarray]:
    """Future box centres at ``times`` (K,) seconds ahead, with their covariance.

    Returns:
        centres: (N, K, 2) predicted centre x, y [px].
        cov_xy: (N, K, 3) covariance entries (var_x, cov_xy, var_y) [px^2]; cov_xy is 0 for this
        model (coordinates are independent).
    """
    k = len(times)
    centre_map, var_map, q = _trajectory_maps(tuple(np.asarray(times, dtype=np.float64).tolist()),
                                              noise.velocity, noise.position)
    n = len(mean)
    centres = mean.dot(centre_map).reshape(n, k, 2)
    var = cov.reshape(n, 12).dot(var_map).reshape(n, k, 2)
    var += np.multiply.outer(_heights(mean) ** 2, q)[..., None]  # position noise, per unit height^2
    out = np.zeros((n, k, 3))
    out[..., 0::2] = var
    return centres, out


@functools.lru_cache(maxsize=16)
def _trajectory_maps(times: tuple[float, ...], velocity: float,
                     position: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear maps from the state to trajectory centres (8, 2K) and from the block covariance, flattened,
    to the centres' x and y variances (12, 2K), and the process noise of position per unit squared
    height (K,). Cached: a node asks for the same times every frame."""
    t = np.asarray(times, dtype=np.float64)
    k = len(t)
    centre_map = np.zeros((8, k, 2))
    var_map = np.zeros((4, 3, k, 2))
    for axis in range(2):  # x = cx + t vcx; var = pp + 2 t pv + t^2 vv of that coordinate
        centre_map[axis, :, axis] = 1.0
        centre_map[4 + axis, :, axis] = t
        var_map[axis, 0, :, axis] = 1.0
        var_map[axis, 1, :, axis] = 2.0 * t
        var_map[axis, 2, :, axis] = t * t
    q = _process_noise(t, velocity, position)[0]
    for a in (centre_map, var_map, q):
        a.flags.writeable = False
    return centre_map.reshape(8, 2 * k), var_map.reshape(12, 2 * k), q


def warp_affine(mean: np.ndarray, cov: np.ndarray, warp_2x3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move (N,) states by an image warp ``x' = A x + t`` (camera motion between two frames): one (2, 3)
    warp for every track, or (N, 2, 3), one per track (a homography linearised at each track, see
    :func:`local_affines`).

    The centre is warped, the centre velocity turned by ``A``; width, height, their rates and every
    variance scale by ``s = sqrt(|det A|)`` (variances by ``s**2``). Exact for translations and, because
    this filter keeps equal cx and cy variances, for rotations and similarity warps; an approximation for
    shears and anisotropic scaling. Returns new arrays.
    """
    warp = np.asarray(warp_2x3, dtype=np.float64).reshape(-1, 2, 3)  # (1 | N, 2, 3): broadcast over tracks
    a, t = warp[:, :, :2], warp[:, :, 2]
    s = np.sqrt(np.abs(np.linalg.det(a)))[:, None]  # (1 | N, 1)
    out_mean = mean.copy()
    out_mean[:, 0:2] = (a @ mean[:, 0:2, None])[..., 0] + t
    out_mean[:, 4:6] = (a @ mean[:, 4:6, None])[..., 0]
    out_mean[:, 2:4] *= s
    out_mean[:, 6:8] *= s
    return out_mean, cov * (s * s)[:, :, None]


def local_affines(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2, 3) affine warps that agree with the (3, 3) ``homography`` at (N, 2) ``points`` to first order:
    each maps its point exactly and has the homography's Jacobian there (a camera that turns moves the
    image's edges more than its centre, so each track gets the warp of its own place). A point the
    homography maps to or behind the line at infinity (turned 90 degrees or more off the camera's axis: it
    has no place in the image) gets NaN.
    """
    h = np.asarray(homography, dtype=np.float64).reshape(3, 3)
    p = points @ h[:, :2].T + h[:, 2]  # (N, 3) homogeneous images of the points
    z = p[:, 2]
    ahead = z > 1e-9 * np.abs(p[:, :2]).max(axis=1, initial=1.0)
    z = np.where(ahead, z, np.nan)
    xy = p[:, :2] / z[:, None]
    jac = (h[None, :2, :2] - xy[:, :, None] * h[None, 2:3, :2]) / z[:, None, None]  # d xy / d point
    t = xy - np.einsum("nij,nj->ni", jac, points)
    return np.concatenate([jac, t[:, :, None]], axis=2)


def full_covariance(cov: np.ndarray) -> np.ndarray:
    """Expand (N,4,3) block form to the (N,8,8) covariance of ``[cx,cy,w,h,vcx,vcy,vw,vh]``."""
    n = len(cov)
    full = np.zeros((n, 8, 8))
    idx = np.arange(4)
    full[:, idx, idx] = cov[:, :, 0]
    full[:, idx, idx + 4] = cov[:, :, 1]
    full[:, idx + 4, idx] = cov[:, :, 1]
    full[:, idx + 4, idx + 4] = cov[:, :, 2]
    return full
