"""3D positions of boxes from a registered depth image (ros2_tracker.core.depth), against closed forms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ros2_tracker.core.depth import GRID, DepthHistory, box_positions, position_velocities

K = np.array([[500.0, 0.0, 320.0], [0.0, 520.0, 240.0], [0.0, 0.0, 1.0]])


def scene(wall_m: float = 8.0) -> np.ndarray:
    """A 640 x 480 depth image [m]: a wall, a person at 3 m (columns 200-299, rows 100-399) and one at
    5.5 m (columns 400-439, rows 150-349)."""
    depth = np.full((480, 640), wall_m, dtype=np.float32)
    depth[100:400, 200:300] = 3.0
    depth[150:350, 400:440] = 5.5
    return depth


def back_projected(u: float, v: float, z: float, k: np.ndarray = K) -> list[float]:
    """The closed form: the pixel (u, v) at depth z through K (with skew)."""
    y = (v - k[1, 2]) / k[1, 1]
    x = (u - k[0, 2] - k[0, 1] * y) / k[0, 0]
    return [x * z, y * z, z]


def test_each_box_gets_the_depth_of_its_middle_back_projected_through_its_centre():
    # boxes a little loose around each person: their edges show the wall 8 m behind
    boxes = np.array([[190.0, 90.0, 310.0, 410.0], [395.0, 140.0, 445.0, 360.0]])
    pos = box_positions(scene(), boxes, K)
    np.testing.assert_allclose(pos[0], back_projected(250.0, 250.0, 3.0), rtol=1e-9)
    np.testing.assert_allclose(pos[1], back_projected(420.0, 250.0, 5.5), rtol=1e-9)
    # the whole box (fraction 1) is mostly person here too, but the loose edges pull no median: a box
    # whose middle shows the wall gets the wall's depth
    wide = np.array([[100.0, 100.0, 600.0, 400.0]])
    assert box_positions(scene(), wide, K, fraction=0.2)[0, 2] == 8.0


def test_the_median_of_an_even_count_is_the_mean_of_the_two_middle_depths():
    depth = np.full((100, 100), 2.0, dtype=np.float32)
    depth[:, 50:] = 4.0  # the box's left half at 2 m, its right half at 4 m: 128 samples each
    pos = box_positions(depth, np.array([[25.0, 10.0, 75.0, 90.0]]), np.eye(3), fraction=1.0)
    assert pos[0, 2] == 3.0
    depth[:, 45:50] = 5.0  # now more than half of the samples are 4 m or more: the median is 4 m
    assert box_positions(depth, np.array([[25.0, 10.0, 75.0, 90.0]]), np.eye(3), fraction=1.0)[0, 2] == 4.0


def test_too_few_valid_depths_give_no_position_rather_than_a_guess():
    depth = scene()
    box = np.array([[200.0, 100.0, 300.0, 400.0]])
    depth[100:400, 200:300] = np.nan  # the sensor sees nothing of the person (glass, black clothes)
    depth[240:250, 245:255] = 3.0  # but for a few pixels: 1 sample of 256
    assert np.isnan(box_positions(depth, box, K)).all()
    depth[175:325, 225:275] = 3.0  # the person's middle: all samples valid
    assert box_positions(depth, box, K)[0, 2] == 3.0
    # depths outside [min_m, max_m] are not valid: a wall beyond max_m gives nothing
    assert np.isnan(box_positions(scene(), np.array([[0.0, 0.0, 100.0, 90.0]]), K, max_m=7.0)).all()
    assert box_positions(scene(), np.array([[0.0, 0.0, 100.0, 90.0]]), K, max_m=9.0)[0, 2] == 8.0
    zeros = np.zeros((480, 640), dtype=np.float32)  # 0 is a sensor's "no depth": below min_m
    assert np.isnan(box_positions(zeros, box, K)).all()


def test_boxes_partly_or_wholly_outside_the_image_use_what_is_inside():
    depth = scene()
    depth[:, :60] = 2.0
    depth[:, :2] = 7.0  # the image's edge columns: something else
    # half of the box's middle is left of the image: its samples there are not clipped to the edge column
    # (which would then outvote the rest); the ones inside give the depth
    part = box_positions(depth, np.array([[-100.0, 100.0, 100.0, 200.0]]), K)
    np.testing.assert_allclose(part[0], back_projected(0.0, 150.0, 2.0), rtol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-cast warning on absurd boxes
        far = box_positions(depth, np.array([[1e30, 1e30, 2e30, 2e30], [np.nan, 0.0, 10.0, 10.0],
                                             [700.0, 500.0, 800.0, 600.0]]), K)
    assert np.isnan(far).all()
    assert box_positions(depth, np.zeros((0, 4)), K).shape == (0, 3)


def test_a_depth_image_of_another_resolution_is_scaled_to_the_camera_image():
    full = scene()
    half = full[::2, ::2]  # a half-size registered depth image
    boxes = np.array([[190.0, 90.0, 310.0, 410.0], [395.0, 140.0, 445.0, 360.0]])
    np.testing.assert_allclose(box_positions(half, boxes, K, depth_scale=(0.5, 0.5)),
                               box_positions(full, boxes, K), rtol=1e-9)
    # unscaled, the same boxes would read the wrong place of the half-size image
    assert not np.allclose(box_positions(half, boxes, K), box_positions(full, boxes, K), equal_nan=True)


def test_a_skewed_camera_matrix_is_inverted_exactly():
    k = np.array([[600.0, 4.0, 300.0], [0.0, 610.0, 250.0], [0.0, 0.0, 1.0]])
    pos = box_positions(scene(), np.array([[200.0, 100.0, 300.0, 400.0]]), k)
    np.testing.assert_allclose(pos[0], back_projected(250.0, 250.0, 3.0, k), rtol=1e-9)
    # re-projected through K, the position lands on the box's centre
    uvw = k @ pos[0]
    np.testing.assert_allclose(uvw[:2] / uvw[2], [250.0, 250.0], rtol=1e-12)


def test_the_cost_does_not_grow_with_the_box():
    """A fixed grid of GRID x GRID samples per box, whatever its size: a 1-pixel-wide box and a huge one
    both read 256 depths (the huge one would otherwise read a million)."""
    depth = np.arange(1000 * 1000, dtype=np.float32).reshape(1000, 1000) / 1e5 + 0.5
    tiny = box_positions(depth, np.array([[500.0, 500.0, 501.0, 501.0]]), np.eye(3), fraction=1.0)
    assert tiny[0, 2] == pytest.approx(depth[500, 500])
    assert GRID * GRID == 256


def test_bad_inputs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="2-D"):
        box_positions(np.zeros((4, 4, 3)), np.zeros((1, 4)), K)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        box_positions(np.zeros((4, 4)), np.zeros((1, 5)), K)
    with pytest.raises(ValueError, match="3 x 3"):
        box_positions(np.zeros((4, 4)), np.zeros((1, 4)), np.eye(2))


def test_given_centres_are_back_projected_and_the_depth_still_read_at_the_boxes():
    """A lens-distorted image (``io.camera_model``): the caller's undistorted centres go through K, the depth
    is read in the boxes as the image shows them."""
    boxes = np.array([[190.0, 90.0, 310.0, 410.0], [395.0, 140.0, 445.0, 360.0]])
    ideal = np.array([[241.0, 255.5], [433.0, 247.0]])
    pos = box_positions(scene(), boxes, K, centres=ideal)
    np.testing.assert_allclose(pos, [back_projected(241.0, 255.5, 3.0), back_projected(433.0, 247.0, 5.5)])
    v = np.array([[3.0, -1.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])  # the boxes' velocities, as the image shows
    moving = position_velocities(pos, boxes, v, np.zeros(2), K, centres=ideal,
                                 centre_velocities=np.array([[5.0, -2.0], [0.0, 4.0]]))
    np.testing.assert_allclose(moving[:, :2], [[5.0 * 3 / 500, -2.0 * 3 / 520], [0.0, 4.0 * 5.5 / 520]])
    with pytest.raises(ValueError, match=r"centres must have shape \(2, 2\)"):
        box_positions(scene(), boxes, K, centres=ideal[:1])
    with pytest.raises(ValueError, match="go together"):  # undistorted centres with distorted velocities
        position_velocities(pos, boxes, v, np.zeros(2), K, centres=ideal)


def test_velocities_of_points_moving_in_3d_are_recovered_from_image_motion_and_depth_rate():
    """Points moving at constant 3D velocities, seen through a camera with skew: the image velocity of their
    projection (differentiated numerically) and their depth rate give the velocity back."""
    k = np.array([[480.0, 3.0, 310.0], [0.0, 500.0, 250.0], [0.0, 0.0, 1.0]])
    p0 = np.array([[0.4, -0.3, 3.0], [-1.5, 0.2, 7.0], [0.0, 0.0, 2.0]])
    v = np.array([[1.0, 0.0, -1.4], [0.3, -0.1, 2.0], [0.0, 0.0, 0.0]])

    def project(t: float) -> np.ndarray:
        p = p0 + v * t
        return (p @ k.T)[:, :2] / p[:, 2:]

    h = 1e-6
    uv, duv = project(0.0), (project(h) - project(-h)) / (2 * h)
    half = np.array([20.0, 50.0])
    boxes = np.concatenate([uv - half, uv + half], axis=1)
    box_velocities = np.concatenate([duv, np.zeros((3, 2))], axis=1)
    got = position_velocities(p0, boxes, box_velocities, v[:, 2], k)
    np.testing.assert_allclose(got, v, atol=1e-6)
    # unknown depth rate or position: no velocity, not a guess
    rates = v[:, 2].copy()
    rates[1] = np.nan
    positions = p0.copy()
    positions[2] = np.nan
    got = position_velocities(positions, boxes, box_velocities, rates, k)
    assert np.isnan(got[1]).all() and np.isnan(got[2]).all()
    with pytest.raises(ValueError, match="expected positions"):
        position_velocities(p0[:2], boxes, box_velocities, rates, k)


def test_depth_rates_are_the_slope_of_each_tracks_recent_depths():
    h = DepthHistory(window_s=0.5, size=8, min_samples=3)
    rates = [h.rates(np.array([7, 3]), np.array([2.0 + 1.5 * t, 4.0 - 0.5 * t]), t)
             for t in np.arange(12) / 10]
    assert np.isnan(rates[0]).all() and np.isnan(rates[1]).all()  # fewer than 3 depths
    np.testing.assert_allclose(rates[2:], [[1.5, -0.5]] * 10)
    # a new track starts empty, one absent is forgotten, the order of ids may change
    got = h.rates(np.array([11, 7]), np.array([5.0, 2.0 + 1.5 * 1.2]), 1.2)
    assert np.isnan(got[0]) and got[1] == pytest.approx(1.5)
    assert np.isnan(h.rates(np.array([3]), np.array([3.4]), 1.3)).all()  # 3 was forgotten
    # only the window counts: a jump 0.6 s ago does not bend the slope; missing depths are skipped
    h = DepthHistory(window_s=0.5, size=64)
    for t in np.arange(20) / 10:
        z = (1.0 if t < 1.0 else 5.0) + 0.2 * t
        got = h.rates(np.array([1]), np.array([np.nan if round(t * 10) == 17 else z]), t)
    assert got[0] == pytest.approx(0.2)
    # a stamp going back (a replay started over) forgets everything
    assert np.isnan(h.rates(np.array([1]), np.array([1.0]), 0.0)).all()


def test_depth_history_refuses_bad_input():
    with pytest.raises(ValueError, match="window_s > 0"):
        DepthHistory(window_s=0.0)
    h = DepthHistory()
    with pytest.raises(ValueError, match="must not repeat"):
        h.rates(np.array([1, 1]), np.array([1.0, 2.0]), 0.0)
    with pytest.raises(ValueError, match="one length"):
        h.rates(np.array([1, 2]), np.array([1.0]), 0.0)
    with pytest.raises(ValueError, match="stamp must be finite"):
        h.rates(np.array([1]), np.array([1.0]), float("nan"))
    assert h.rates(np.zeros(0, np.int64), np.zeros(0), 1.0).shape == (0,)
