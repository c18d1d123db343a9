"""Camera rotation from a gyroscope: integration between stamps, the homography of a turning camera, and
the core tracker applying it to each track at its own place (ROS-free; the node: test_tracker_node_imu.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ros2_tracker.cmc.gyro import BODY_TO_OPTICAL, GyroBuffer, camera_rotation, rotation_homography
from ros2_tracker.core import Tracker, kalman
from ros2_tracker.core.motion import warp_history

K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])


def project(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    p = np.c_[xy, np.ones(len(xy))] @ h.T
    return p[:, :2] / p[:, 2:]


def steady(rate_xyz, hz: float = 200.0, seconds: float = 2.0, start: float = 10.0) -> GyroBuffer:
    g = GyroBuffer()
    for i in range(int(seconds * hz)):
        assert g.add(start + i / hz, rate_xyz)
    return g


def test_a_pan_to_the_right_moves_static_points_left_by_f_tan_angle():
    """Optical frame (x right, y down, z forward): turning about +y turns z towards +x, a pan to the right;
    a point ahead then moves left by f tan(angle), one at the image's edge by more (1 + (x / f)^2)."""
    g = steady((0.0, 0.6, 0.0))
    rot = g.rotation(10.5, 10.5 + 1 / 30)
    angle = 0.6 / 30
    np.testing.assert_allclose(rot, [[math.cos(angle), 0, math.sin(angle)], [0, 1, 0],
                                     [-math.sin(angle), 0, math.cos(angle)]], atol=1e-12)
    h = rotation_homography(K, rot)
    centre, edge = project(h, np.array([[320.0, 240.0], [620.0, 240.0]]))
    assert centre[0] - 320 == pytest.approx(-500 * math.tan(angle), rel=1e-9)
    assert centre[1] == pytest.approx(240)
    assert edge[0] - 620 == pytest.approx(500 * math.tan(math.atan(300 / 500) - angle) - 300, rel=1e-9)
    assert edge[0] - 620 < 1.3 * (centre[0] - 320)  # the edge moves 1.36x as far


def test_body_frame_yaw_right_is_the_same_pan_and_a_roll_turns_the_image():
    yaw_right = steady((0.0, 0.0, -0.6))  # REP 103 body: z up, a right turn is negative about z
    rot = camera_rotation(yaw_right.rotation(10.5, 10.6), np.array(BODY_TO_OPTICAL).reshape(3, 3))
    pan = steady((0.0, 0.6, 0.0)).rotation(10.5, 10.6)
    np.testing.assert_allclose(rot, pan, atol=1e-12)
    roll = steady((0.0, 0.0, 0.3)).rotation(10.5, 10.6)  # about the optical axis: image turns by -0.03 rad
    (p,) = project(rotation_homography(K, roll), np.array([[420.0, 240.0]]))
    np.testing.assert_allclose(p, [320 + 100 * math.cos(0.03), 240 - 100 * math.sin(0.03)], atol=1e-9)


def test_integration_interpolates_the_rate_between_samples_and_needs_coverage():
    g = GyroBuffer(hold_s=0.1)
    for t, w in ((0.0, 1.0), (0.05, 1.0), (0.10, 3.0), (0.15, 3.0), (0.25, 0.0)):
        g.add(t, (0.0, 0.0, w))
    rot = g.rotation(0.02, 0.2)  # about z: 0.03 s at 1, 1 -> 3 over 0.05 s, 0.05 s at 3, 3 -> 1.5 over 0.05 s
    turned = 0.03 * 1 + 0.05 * 2 + 0.05 * 3 + 0.05 * 2.25
    assert math.atan2(rot[1, 0], rot[0, 0]) == pytest.approx(turned, rel=1e-12)
    sine = GyroBuffer()  # a rate that varies: within 1e-5 rad of the true angle after a second at 200 Hz
    for i in range(300):
        sine.add(i / 200, (0.0, 0.0, 3.0 * math.cos(3.0 * i / 200)))
    rot = sine.rotation(0.0, 1.0)
    assert math.atan2(rot[1, 0], rot[0, 0]) == pytest.approx(math.sin(3.0), abs=1e-5)
    np.testing.assert_allclose(g.rotation(0.2, 0.1), np.eye(3))  # no time: no turn
    assert g.rotation(0.2, 0.34) is not None  # 0.25 holds to 0.35
    assert g.rotation(0.2, 0.5) is None  # the gyro stopped: no guess
    assert g.rotation(-0.3, 0.1) is None  # before its first sample
    gap = GyroBuffer(hold_s=0.05)
    for t in (0.0, 0.3):
        gap.add(t, (0.0, 0.0, 1.0))
    assert gap.rotation(0.0, 0.3) is None  # a 0.3 s hole inside the interval


def test_out_of_order_and_bad_samples_are_dropped_and_a_loop_starts_over():
    g = GyroBuffer(keep_s=1.0)
    assert g.add(5.0, (0, 0, 1)) and g.add(5.1, (0, 0, 1))
    assert not g.add(5.05, (0, 0, 1)) and not g.add(5.2, (np.nan, 0, 0)) and g.dropped == 2
    assert g.add(7.0, (0, 0, 1)) and len(g) == 1  # older ones beyond keep_s are forgotten
    assert g.add(1.0, (0, 0, 2)) and len(g) == 1  # far back: a looped bag, start over
    with pytest.raises(ValueError, match="positive focal"):
        rotation_homography(np.zeros((3, 3)), np.eye(3))


def test_local_affines_are_exact_at_each_point_and_affine_homographies_are_plain_warps():
    h = rotation_homography(K, steady((0.1, 0.5, 0.2)).rotation(10.5, 10.6))
    pts = np.array([[20.0, 30.0], [320.0, 240.0], [600.0, 450.0]])
    a = kalman.local_affines(h, pts)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", a[:, :, :2], pts) + a[:, :, 2], project(h, pts))
    eps = 1e-4  # the Jacobian: a small step maps as the homography does
    np.testing.assert_allclose(np.einsum("nij,nj->ni", a[:, :, :2], pts + eps) + a[:, :, 2],
                               project(h, pts + eps), atol=1e-6)
    affine = np.array([[1.1, 0.1, 5.0], [-0.1, 1.1, -3.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(kalman.local_affines(affine, pts), np.broadcast_to(affine[:2], (3, 2, 3)))
    mean, cov = kalman.initiate(np.c_[pts, [[20.0, 50.0]] * 3], kalman.MotionNoise())
    one = kalman.warp_affine(mean, cov, affine[:2])
    each = kalman.warp_affine(mean, cov, kalman.local_affines(affine, pts))
    for x, y in zip(one, each, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-12)
    hist = np.random.default_rng(0).uniform(10, 400, (3, 4, 4))
    np.testing.assert_allclose(warp_history(hist, np.broadcast_to(affine[:2], (3, 2, 3))),
                               warp_history(hist, affine[:2]), atol=1e-12)
    behind = kalman.local_affines(np.array([[1.0, 0, 0], [0, 1, 0], [-1.0, 0, 1]]), np.array([[2.0, 0.0],
                                                                                            [0.5, 0.0]]))
    assert np.isnan(behind[0]).all() and np.isfinite(behind[1]).all()  # the first is beyond the horizon


def test_a_track_turned_out_of_the_cameras_reach_is_dropped():
    """A lost track coasting far outside the image that a turn puts 90 degrees or more off the camera's
    axis has no place in the image: dropped (and counted), the others moved."""
    t = Tracker()
    t.update(np.array([[300.0, 200.0, 340.0, 300.0], [-4420.0, 200.0, -4380.0, 300.0]]), stamp=0.0)  # -84 deg
    h = rotation_homography(K, steady((0.0, 0.2, 0.0)).rotation(10.0, 11.0))  # 11.5 deg to the right
    before = t.tracks().boxes_xyxy[0]
    assert t.apply_camera_motion(h) == 1 and t.tracks().ids.tolist() == [1]
    (after,) = t.tracks().boxes_xyxy
    assert after[0] - before[0] == pytest.approx(project(h, np.array([[320.0, 250.0]]))[0, 0] - 320, abs=1.0)
    assert t.apply_camera_motion(np.array([[1.0, 0, 5], [0, 1, 0]])) == 0


def test_a_turning_camera_keeps_its_ids_with_the_gyro_and_loses_them_without():
    """Three people standing still while the camera starts to pan at 90 deg/s (26 px per frame at 30 Hz):
    the constant-velocity prediction stays behind and the small boxes no longer overlap it, so without the
    gyro every track restarts; with it each track is moved by the homography at its own place."""
    fps, rate = 30.0, math.radians(90.0)
    people = np.array([[100.0, 200.0], [320.0, 220.0], [560.0, 260.0]])  # foot points, static in the world
    gyro = GyroBuffer()
    for i in range(int(2.0 * 200)):
        gyro.add(i / 200, (0.0, rate if i / 200 >= 0.5 else 0.0, 0.0))

    def boxes_at(t: float) -> np.ndarray:
        rot = gyro.rotation(0.0, t) if t > 0 else np.eye(3)
        c = project(rotation_homography(K, rot), people)
        return np.c_[c[:, 0] - 10, c[:, 1] - 40, c[:, 0] + 10, c[:, 1]]

    ids = {}
    for use_gyro in (False, True):
        tracker = Tracker()
        seen = set()
        for k in range(30):  # 1 s: 0.5 s still, then the pan
            t = k / fps
            if use_gyro and k:
                tracker.apply_camera_motion(rotation_homography(K, gyro.rotation((k - 1) / fps, t)))
            out = tracker.update(boxes_at(t), stamp=t)
            seen |= set(out.ids[out.det_indices >= 0].tolist())
        ids[use_gyro] = seen
    assert len(ids[True]) == 3, ids
    assert len(ids[False]) >= 6, ids  # each person restarted at least once
