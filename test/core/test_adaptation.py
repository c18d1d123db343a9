"""The tracker's online estimators on their own: the detector's box noise and the common image motion."""

import numpy as np
import pytest

from ros2_tracker.core.adaptation import MIN_STEP_S, WINDOW_S, CommonMotion, NoiseEstimate, median_and_mad


def test_noise_estimate_starts_at_its_prior_and_follows_a_precise_detector():
    est = NoiseEstimate()
    assert est.estimate(0.1, 0.03) == 0.1  # no innovations: the upper bound is the prior
    rng = np.random.default_rng(0)
    added = []
    for update in range(1, 40):
        if est.wants(update):
            added.append(np.abs(rng.normal(0.0, 0.02, 12)))  # relative height innovations of 2 %
            est.add(added[-1])
    seen = np.concatenate(added)
    # 2.5 x the mean absolute innovation, with a prior of 20 innovations at the upper bound (0.1 / 2.5)
    expected = 2.5 * (seen.sum() + 20 * 0.04) / (len(seen) + 20)
    assert est.estimate(0.1, 0.03) == pytest.approx(expected, rel=1e-12)
    assert 0.04 < expected < 0.05  # towards 2.5 x 0.016 (the mean |innovation| of 2 % noise)
    assert est.estimate(0.1, 0.05) == 0.05  # within its bounds
    assert est.estimate(0.02, 0.01) == 0.02
    est.reset()
    assert est.estimate(0.1, 0.03) == 0.1


def test_noise_estimate_a_noisy_detector_keeps_the_upper_bound():
    est = NoiseEstimate()
    est.add(np.full(50, 0.2))  # innovations of 20 % of the height: noisier than the bound assumes
    assert est.estimate(0.1, 0.03) == 0.1


def test_noise_estimate_samples_every_update_until_settled_then_every_eighth():
    est = NoiseEstimate()
    assert all(est.wants(u) for u in range(1, 20))
    est.add(np.full(100, 0.01))
    assert [u for u in range(1, 20) if est.wants(u)] == [8, 16]


@pytest.mark.parametrize("n", [3, 9, 64, 65, 300])
def test_median_and_mad_match_numpy_on_both_paths(n):
    v = np.random.default_rng(n).normal(0.0, 3.0, (n, 2))
    med = np.median(v, axis=0)
    mad = np.median(np.abs(v - med), axis=0)
    np.testing.assert_allclose(median_and_mad(v), [med[0], med[1], mad[0], mad[1]], rtol=1e-12)


def _feed(motion, innovations_per_update, dt=0.04):
    """Shifts returned for a sequence of (n, 2) innovation arrays, one per update."""
    out = []
    for update, innov in enumerate(innovations_per_update, start=1):
        motion.step(dt)
        out.append(motion.shift(innov, dt, update, gate=0.6))
    return out


def test_common_motion_stays_out_of_a_static_camera():
    # independent people: their innovations scatter about zero and their median is noise
    rng = np.random.default_rng(1)
    shifts = _feed(CommonMotion(), [rng.normal(0.0, 3.0, (6, 2)) for _ in range(100)])
    warm = int(WINDOW_S / 0.04)
    assert all(s is None for s in shifts[: warm - 1])  # nothing before a second of updates
    weights = [max(s[2], s[3]) if s else 0.0 for s in shifts[warm:]]
    assert np.mean(weights) < 0.2


def test_common_motion_follows_a_pan_and_its_gate_opens():
    # a camera panning faster and faster: every track's innovation is the same growing shift, plus noise
    rng = np.random.default_rng(2)
    innov = [np.array([0.5 * k, 0.0]) + rng.normal(0.0, 1.0, (6, 2)) for k in range(100)]
    motion = CommonMotion()
    shifts = _feed(motion, innov)
    x, _, wx, _ = shifts[-1]
    assert wx == 1.0  # the whiteness gate is open: the full share
    assert x == pytest.approx(0.5 * 99, abs=2.0)  # the median innovation
    motion.reset()
    assert motion.shift(innov[-1], 0.04, 1, gate=0.6) is None  # reset: the warm-up again
    assert motion.shift(innov[-1], 0.04, 2, gate=0.0) == pytest.approx((*np.median(innov[-1], axis=0), 1, 1))


def test_common_motion_time_step_ignores_a_gap_and_follows_a_new_frame_rate():
    motion = CommonMotion()
    for _ in range(30):
        motion.step(0.04)
    motion.step(2.0)  # a paused bag
    assert motion.typical_dt == pytest.approx(0.04 + 0.1 * 0.04)  # a step counts as twice the mean at most
    assert motion.velocity_step(1e-6) == pytest.approx(0.5 * motion.typical_dt)  # not a microsecond
    for _ in range(40):
        motion.step(0.1)  # 25 -> 10 Hz
    assert motion.typical_dt == pytest.approx(0.1, rel=0.05)


def test_common_motion_time_step_is_not_seeded_by_a_duplicated_message():
    """A message a microsecond after the first frame is not a frame interval: seeded by it, the typical step
    would need dozens of updates to grow back, and a shift spread over it would be a huge velocity."""
    motion = CommonMotion()
    motion.step(1e-6)
    assert motion.typical_dt == 0.0
    assert motion.velocity_step(1e-6) == MIN_STEP_S
    for _ in range(3):
        motion.step(1 / 30)
    motion.step(1e-6)
    assert motion.typical_dt == pytest.approx(1 / 30)
    assert motion.velocity_step(1e-6) == pytest.approx(0.5 / 30)
