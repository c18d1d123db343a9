"""Batched constant-velocity Kalman filter vs. closed forms and the textbook 8x8 filter."""

import numpy as np
import pytest

from ros2_tracker.core import kalman
from ros2_tracker.core.kalman import MotionNoise


def _textbook(mean, cov_full, dt, noise, z=None):
    """Dense 8x8 Kalman predict (+ update) with the same noise model."""
    f = np.eye(8)
    f[:4, 4:] = dt * np.eye(4)
    h = max(mean[3], 1.0)
    qa, qp = (noise.velocity * h) ** 2, (noise.position * h) ** 2
    q = np.zeros((8, 8))
    q[:4, :4] = (qa * dt**3 / 3 + qp * dt) * np.eye(4)
    q[:4, 4:] = q[4:, :4] = qa * dt**2 / 2 * np.eye(4)
    q[4:, 4:] = qa * dt * np.eye(4)
    m = f @ mean
    p = f @ cov_full @ f.T + q
    if z is not None:
        hm = np.hstack([np.eye(4), np.zeros((4, 4))])
        r = (noise.measurement * max(z[3], 1.0)) ** 2 * np.eye(4)
        s = hm @ p @ hm.T + r
        k = p @ hm.T @ np.linalg.inv(s)
        m = m + k @ (z - hm @ m)
        p = (np.eye(8) - k @ hm) @ p
    return m, p


def test_prediction_is_closed_form_constant_velocity():
    noise = MotionNoise()
    mean, cov = kalman.initiate(np.array([[100.0, 50.0, 40.0, 80.0]]), noise)
    mean[0, 4:] = [10.0, -5.0, 0.0, 1.0]  # px/s
    m, _ = kalman.predict(mean, cov, 0.5, noise)
    assert m[0, :4] == pytest.approx([105.0, 47.5, 40.0, 80.5])
    m2, _ = kalman.predict(*kalman.predict(mean, cov, 0.2, noise), 0.3, noise)
    assert m2[0, :4] == pytest.approx(m[0, :4])


@pytest.mark.parametrize("dt", [1 / 30, 1 / 30 + 1.7e-5, 0.1, 0.37, 2.0])  # + a jittered live-camera step
def test_matches_textbook_filter(dt):
    noise = MotionNoise(0.05, 1.3, 0.2, 0.8)
    rng = np.random.default_rng(1)
    mean, cov = kalman.initiate(rng.uniform(50, 150, size=(3, 4)), noise)
    mean[:, 4:] = rng.normal(size=(3, 4)) * 10
    z = mean[:, :4] + rng.normal(size=(3, 4)) * 3
    pm, pc = kalman.predict(mean, cov, dt, noise)
    um, uc = kalman.update(pm, pc, z, kalman.measurement_var(z, noise))
    full = kalman.full_covariance(cov)
    for i in range(3):
        em, ep = _textbook(mean[i], full[i], dt, noise)
        assert pm[i] == pytest.approx(em)
        assert kalman.full_covariance(pc)[i] == pytest.approx(ep)
        em, ep = _textbook(mean[i], full[i], dt, noise, z[i])
        assert um[i] == pytest.approx(em)
        assert kalman.full_covariance(uc)[i] == pytest.approx(ep, abs=1e-9)


def test_irregular_steps_equal_one_big_step_in_mean_and_grow_variance():
    noise = MotionNoise()
    mean, cov = kalman.initiate(np.array([[0.0, 0.0, 10.0, 20.0]]), noise)
    mean[0, 4] = 30.0
    a = (mean, cov)
    for dt in (0.033, 0.1, 0.017, 0.25):  # dropped frames, jitter
        a = kalman.predict(*a, dt, noise)
    b = kalman.predict(mean, cov, 0.4, noise)
    assert a[0] == pytest.approx(b[0])
    assert a[1][0, 0, 0] > cov[0, 0, 0]


def test_trajectory_horizon_and_covariance_growth():
    noise = MotionNoise()
    mean, cov = kalman.initiate(np.array([[10.0, 20.0, 30.0, 60.0]]), noise)
    mean[0, 4:6] = [5.0, 2.0]
    times = np.arange(1, 11) * 0.2
    centres, c = kalman.predict_trajectory(mean, cov, times, noise)
    assert centres.shape == (1, 10, 2)
    assert centres[0, -1] == pytest.approx([10 + 5 * 2.0, 20 + 2 * 2.0])
    assert np.all(np.diff(c[0, :, 0]) > 0) and np.all(np.diff(c[0, :, 2]) > 0)
    assert np.all(c[0, :, 1] == 0)
    # the trajectory's variance at t equals the predicted covariance at t
    _, pc = kalman.predict(mean, cov, 2.0, noise)
    assert c[0, -1, 0] == pytest.approx(pc[0, 0, 0])


def test_mahalanobis_gate():
    noise = MotionNoise()
    mean, cov = kalman.initiate(np.array([[100.0, 100.0, 40.0, 100.0]]), noise)
    near = np.array([[101.0, 99.0, 40.0, 100.0]])
    far = np.array([[200.0, 100.0, 40.0, 100.0]])
    d = kalman.mahalanobis_sq(mean, cov, np.vstack([near, far]),
                              kalman.measurement_var(np.vstack([near, far]), noise))
    assert d[0, 0] < kalman.CHI2_95_4DOF < d[0, 1]


def _predicted_tracks(noise, n=3):
    mean, cov = kalman.initiate(np.tile([100.0, 200.0, 40.0, 100.0], (n, 1)), noise)
    mean[:, 4:] = [20.0, 0.0, 0.0, 0.0]
    return kalman.predict(*kalman.predict(mean, cov, 0.1, noise), 0.1, noise)


def test_robust_update_leaves_inliers_alone_and_bounds_an_outliers_correction():
    noise, sigma = MotionNoise(), 2.5
    mean, cov = _predicted_tracks(noise)
    sd = np.sqrt(cov[:, 3, 0] + (noise.measurement * 100.0) ** 2)  # height innovation std (box height 100)

    def height_correction(dev, robust):
        z = mean[:, :4].copy()
        z[:, 3] += dev * sd
        var = (noise.measurement * 100.0) ** 2 * np.ones((len(z), 1))  # the prediction's height: fixed R
        m, _ = kalman.update(mean, cov, z, var, sigma if robust else 0.0)
        return m[:, 3] - mean[:, 3], m

    _, m_small = height_correction(1.5, True)  # within sigma: the plain update, bit for bit
    np.testing.assert_array_equal(m_small, height_correction(1.5, False)[1])
    at_sigma, _ = height_correction(sigma, False)
    for dev in (4.0, 10.0, -10.0):  # beyond sigma: the correction a sigma-deviation gets, no more
        robust, _ = height_correction(dev, True)
        np.testing.assert_allclose(robust, np.sign(dev) * at_sigma, rtol=1e-9)
        assert np.all(np.abs(height_correction(dev, False)[0]) > 1.5 * np.abs(robust))
    # one outlier in a batch leaves the other tracks' updates exactly as they were
    z = mean[:, :4].copy()
    z[1, 3] += 10 * sd[1]
    var = np.full((3, 1), (noise.measurement * 100.0) ** 2)
    m_rob, c_rob = kalman.update(mean, cov, z, var, sigma)
    m_plain, c_plain = kalman.update(mean, cov, z, var)
    np.testing.assert_array_equal(m_rob[[0, 2]], m_plain[[0, 2]])
    np.testing.assert_array_equal(c_rob[[0, 2]], c_plain[[0, 2]])
    assert abs(m_rob[1, 3] - mean[1, 3]) < abs(m_plain[1, 3] - mean[1, 3])
    assert np.all(c_rob[1][:, [0, 2]] > c_plain[1][:, [0, 2]])  # it teaches less: less certainty gained
    # an empty batch is a valid update, robust as well as plain (the plain one always accepted it)
    m0, c0 = kalman.update(mean[:0], cov[:0], z[:0], var[:0], sigma)
    assert m0.shape == (0, 8) and c0.shape == (0, *cov.shape[1:])
