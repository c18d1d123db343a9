"""What the tracker learns online from its own innovations: the detector's box noise, and the image motion
its tracks share (a moving camera, seen in the detections alone).

Both are small estimators with explicit state, fed once per update by
:class:`~ros2_tracker.core.tracker.Tracker` (which decides which matches count) and reset with it:

* :class:`NoiseEstimate`: the detector's box noise from matched tracks' relative height innovations
  (``adaptive_measurement_noise``).
* :class:`CommonMotion`: the median centre innovation of the settled matched tracks, how much of it to
  trust (a Wiener weight against its own noise) and whether it behaves like a camera's motion (a whiteness
  test) (``camera_motion_gain``, ``camera_motion_gate``).
"""

from __future__ import annotations

import math
import statistics

import numpy as np

__all__ = ["CommonMotion", "NoiseEstimate", "median_and_mad"]

# NoiseEstimate: std = factor x the mean absolute height innovation (relative to height) of the matched
# tracks. For Gaussian innovations std(innovation) = 1.25 mean|innovation| and includes the prediction's
# own variance, so 1.25 would be the largest consistent estimate; twice that leaves room for detectors'
# heavy-tailed errors (partial and merged boxes), where smoothing pays: the noise only drops below its
# upper bound for a detector whose boxes are clearly tighter than it assumes. The estimate starts as if
# _NOISE_PRIOR_SAMPLES innovations had matched the upper bound, so a few frames cannot swing it; once it
# rests on _NOISE_SETTLED_SAMPLES, only every _NOISE_SETTLED_STRIDE-th update adds to it.
_NOISE_PER_INNOVATION = 2.5
_NOISE_PRIOR_SAMPLES = 20
_NOISE_SETTLED_SAMPLES = 100
_NOISE_SETTLED_STRIDE = 8

WINDOW_S = 1.0  # CommonMotion: time constant (and warm-up) of the running means of the weight and the gate
# CommonMotion: a time step shorter than this is a duplicated or split message, not a frame interval (no
# camera here runs at a kilohertz): it does not count towards the typical step, and no shift is spread over
# less
MIN_STEP_S = 1e-3
# CommonMotion's weighting: the variance of the median of n innovations is (pi / 2) sigma^2 / n for Gaussian
# ones; sigma from their median absolute deviation, 1.4826 MAD, times the small-sample correction of Croux
# and Rousseeuw (1992) for n <= 9 (n / (n - 0.8) beyond)
_MEDIAN_VAR = math.pi / 2.0
_MAD_SIGMA = 1.4826
_MAD_SMALL_SAMPLE = {2: 1.196, 3: 1.495, 4: 1.363, 5: 1.206, 6: 1.200, 7: 1.140, 8: 1.129, 9: 1.107}
_LIST_MEDIAN_LIMIT = 64  # median_and_mad: above this many values NumPy's median is the cheaper one


def median_and_mad(values: np.ndarray) -> tuple[float, float, float, float]:
    """Medians and median absolute deviations of the two columns of (n, 2) ``values``: (median x, median y,
    MAD x, MAD y). A frame's few dozen values go through the standard library (cheaper than NumPy's calls on
    them), hundreds through NumPy."""
    if len(values) > _LIST_MEDIAN_LIMIT:
        med = np.median(values, axis=0)
        mad = np.median(np.abs(values - med), axis=0)
        return float(med[0]), float(med[1]), float(mad[0]), float(mad[1])
    xs, ys = values.T.tolist()
    x, y = statistics.median(xs), statistics.median(ys)
    return (x, y, statistics.median([abs(v - x) for v in xs]), statistics.median([abs(v - y) for v in ys]))


class NoiseEstimate:
    """The detector's box noise [fraction of box height], estimated from matched tracks' height innovations
    (relative to the predicted height): the coordinate that neither the people's nor the camera's motion
    moves much, so its innovation is mostly the detector's. Every match counts: a recovered lost track's
    larger innovation only errs towards more smoothing."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every innovation."""
        self._sum, self._count = 0.0, 0

    def wants(self, update: int) -> bool:
        """Whether update number ``update`` should add its innovations: every update until the estimate rests
        on ``_NOISE_SETTLED_SAMPLES`` innovations, then every ``_NOISE_SETTLED_STRIDE``-th (the estimate
        hardly moves any more, and the other updates skip the work)."""
        return self._count < _NOISE_SETTLED_SAMPLES or not update % _NOISE_SETTLED_STRIDE

    def add(self, rel_innovations: np.ndarray) -> None:
        """Fold in (N,) absolute height innovations relative to the predicted heights."""
        self._sum += float(rel_innovations.sum())
        self._count += len(rel_innovations)

    def estimate(self, upper: float, lower: float) -> float:
        """The noise estimate within [``lower``, ``upper``]; ``upper`` is also the prior (the estimate with
        no innovations yet)."""
        prior = _NOISE_PRIOR_SAMPLES * upper / _NOISE_PER_INNOVATION
        mean = (self._sum + prior) / (self._count + _NOISE_PRIOR_SAMPLES)
        return min(max(_NOISE_PER_INNOVATION * mean, lower), upper)


class CommonMotion:
    """The image motion the settled matched tracks agree on, update by update: the median of their centre
    innovations, weighted against its own noise, and a whiteness test that tells a moving camera from
    people's own motion. The tracker moves every track by ``camera_motion_gain`` times the weighted median
    that :meth:`shift` returns."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new sequence or a reset tracker)."""
        self.typical_dt = 0.0  # running mean of the time steps seen [s]
        # the whiteness test: the last median innovation (and the update that gave it), running means of
        # the lag-1 product and of the power of the median innovations, seconds folded in
        self._prev: tuple[float, float] | None = None
        self._prev_update = -1
        self._lag = self._power = self._seen_s = 0.0
        # the weighting: running means over WINDOW_S of the median innovation's power beyond its noise
        # variance, per axis [px^2], and seconds folded in
        self._signal_x = self._signal_y = self._signal_s = 0.0

    def step(self, dt: float) -> None:
        """Fold this update's time step ``dt`` > 0 into :attr:`typical_dt`: a running mean of the steps,
        each clipped to [1/2, 2] x the mean. A long gap in the stamps (a paused bag, a stalled detector)
        must not inflate it, which would shrink the velocity share for dozens of updates; a real change of
        frame rate still takes over within some 15 updates. A step below ``MIN_STEP_S`` is left out: seeded
        by one, the mean would take dozens of updates to grow back to the frame interval."""
        if dt < MIN_STEP_S:
            return
        typical = self.typical_dt
        if typical:
            clipped = min(max(dt, 0.5 * typical), 2.0 * typical)
            self.typical_dt = typical + 0.1 * (clipped - typical)
        else:
            self.typical_dt = dt

    def velocity_step(self, dt: float) -> float:
        """The time over which a shift counts as velocity: the largest of ``dt``, half the typical step and
        ``MIN_STEP_S``, so a message a microsecond after the last cannot turn a pixel of innovation into a
        huge velocity."""
        return max(dt, 0.5 * self.typical_dt, MIN_STEP_S)

    def shift(self, innovations: np.ndarray, dt: float, update: int,
              gate: float) -> tuple[float, float, float, float] | None:
        """This update's common motion from the (n, 2) centre innovations [px] of the settled matched tracks
        (n >= 2) at update number ``update``, ``dt`` seconds after the last: (x, y, wx, wy), the median
        innovation and its per-axis weights (1 while the whiteness ``gate`` is open, or always when ``gate``
        is 0); None when both weights are 0."""
        x, y, mad_x, mad_y = median_and_mad(innovations)
        wx, wy = self._weights(len(innovations), x, y, mad_x, mad_y, dt)
        if gate <= 0 or self._camera_moves(x, y, dt, update, gate):
            wx = wy = 1.0
        if not (wx or wy):
            return None
        return x, y, wx, wy

    def _weights(self, n: int, x: float, y: float, mad_x: float, mad_y: float,
                 dt: float) -> tuple[float, float]:
        """Per axis, the weight S / (S + V) of this update's median innovation (``x``, ``y``; of ``n``
        innovations whose median absolute deviations are ``mad_x``, ``mad_y``): V is the variance of a median
        of that many innovations about a common motion, from this update's spread; S the running mean over
        ``WINDOW_S`` of the median's power beyond V (at least 0): the common motion's own power. A static
        camera leaves the median within its noise, S about 0 and the weight near 0; a camera that moves,
        shakes or sways gives a median outside it and a weight towards 1 (a Wiener gain), every update, also
        while the whiteness gate is shut; the more tightly this update's innovations agree, the more their
        median counts. 0 until ``WINDOW_S`` of updates have been folded in."""
        k = _MEDIAN_VAR * (_MAD_SIGMA * _MAD_SMALL_SAMPLE.get(n, n / (n - 0.8))) ** 2 / n
        var_x, var_y = k * mad_x * mad_x, k * mad_y * mad_y
        rate = min(1.0, dt / WINDOW_S)
        s_x = self._signal_x = self._signal_x + rate * (x * x - var_x - self._signal_x)
        s_y = self._signal_y = self._signal_y + rate * (y * y - var_y - self._signal_y)
        self._signal_s += dt
        if self._signal_s < WINDOW_S:
            return 0.0, 0.0
        s_x, s_y = max(s_x, 0.0), max(s_y, 0.0)
        return (s_x / (s_x + var_x) if s_x else 0.0), (s_y / (s_y + var_y) if s_y else 0.0)

    def _camera_moves(self, x: float, y: float, dt: float, update: int, gate: float) -> bool:
        """The whiteness test. A Kalman filter that fits its objects leaves innovations uncorrelated from
        one update to the next, and their median over independent people is noise about zero; a camera
        whose motion changes gives every track the same error for several updates, so the median's lag-1
        autocorrelation (running means over ``WINDOW_S`` of m_t . m_t-1 and of (|m_t|^2 + |m_t-1|^2) / 2,
        pairs of consecutive updates only) rises towards 1. Open while it is at least ``gate``, after
        ``WINDOW_S`` of pairs; an update without a pair keeps the last decision. ``x, y``: this update's
        median centre innovation [px]. In the tracker these are the innovations left after the compensation
        of the updates before (closed loop), which takes out most of the correlation: the test opens mainly
        when the compensation falls behind, and the weights of :meth:`_weights` do most of the work."""
        prev, consecutive = self._prev, self._prev_update == update - 1
        self._prev, self._prev_update = (x, y), update
        if prev is not None and consecutive:
            rate = min(1.0, dt / WINDOW_S)
            self._lag += rate * (x * prev[0] + y * prev[1] - self._lag)
            power = 0.5 * (x * x + y * y + prev[0] * prev[0] + prev[1] * prev[1])
            self._power += rate * (power - self._power)
            self._seen_s += dt
        return self._seen_s >= WINDOW_S and self._power > 0 and self._lag >= gate * self._power
