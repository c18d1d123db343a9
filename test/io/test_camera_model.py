"""A camera_info's lens (``ros2_tracker.io.camera_model``): undistortion checked against OpenCV's forward
projection of known 3D points through each distortion model, the rectified image's P, and the refusals."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ros2_tracker.io.camera_model import camera_model

K = np.array([[520.0, 0.0, 330.0], [0.0, 515.0, 236.0], [0.0, 0.0, 1.0]])
LENSES = {  # wide-angle lenses: up to 60-90 px at the image's edges
    "plumb_bob": [-0.3, 0.1, 0.001, -0.002, -0.02],
    "rational_polynomial": [0.5, -0.2, 0.001, 0.002, 0.01, 0.8, -0.1, 0.05],
    "equidistant": [0.05, -0.01, 0.002, -0.001],
}


def points(n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-2.5, 2.5, n), rng.uniform(-1.8, 1.8, n), rng.uniform(2.0, 6.0, n)])


def project(xyz: np.ndarray, model: str, d: list[float]) -> np.ndarray:
    """The pixels OpenCV's forward model gives (what the camera's raw image shows)."""
    if model == "equidistant":
        return cv2.fisheye.projectPoints(xyz.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K,
                                         np.array(d))[0].reshape(-1, 2)
    return cv2.projectPoints(xyz, np.zeros(3), np.zeros(3), K, np.array(d))[0].reshape(-1, 2)


def pinhole(xyz: np.ndarray, k: np.ndarray = K) -> np.ndarray:
    return (xyz @ k.T)[:, :2] / xyz[:, 2:]


@pytest.mark.parametrize("model", sorted(LENSES))
def test_undistorted_pixels_are_the_pinhole_projection(model):
    xyz = points()
    raw = project(xyz, model, LENSES[model])
    seen = ((raw >= 0) & (raw < [640, 480])).all(axis=1)  # points the image shows
    cam = camera_model(K.ravel(), LENSES[model], model)
    assert cam.distorted and seen.sum() > 200
    assert np.abs(raw[seen] - pinhole(xyz[seen])).max() > 50  # the lens matters here
    np.testing.assert_allclose(cam.undistort(raw[seen]), pinhole(xyz[seen]), atol=1e-6)


def test_the_undistorted_motion_is_the_derivative_of_the_pinhole_path():
    # (up to ~700 px/s near the image's edges: a person running past, or the camera turning)
    p0, v = np.array([[1.5, 0.6, 3.5], [-1.2, -0.8, 2.5]]), np.array([[4.0, 0.0, 0.0], [-2.0, 1.5, -0.5]])
    d = LENSES["plumb_bob"]
    h = 1e-5
    raw, raw_velocity = project(p0, "plumb_bob", d), (project(p0 + h * v, "plumb_bob", d)
                                                      - project(p0 - h * v, "plumb_bob", d)) / (2 * h)
    ideal, ideal_velocity = camera_model(K, d, "plumb_bob").undistort_motion(raw, raw_velocity)
    truth = (pinhole(p0 + h * v) - pinhole(p0 - h * v)) / (2 * h)
    np.testing.assert_allclose(ideal, pinhole(p0), atol=1e-6)
    # (a central difference over +-0.5 px)
    np.testing.assert_allclose(ideal_velocity, truth, rtol=1e-3, atol=1e-3)
    assert np.abs(raw_velocity - truth).max() > 0.1 * np.abs(truth).max()  # what the lens did to it


def test_no_distortion_is_the_identity_and_bad_rows_stay_bad():
    for d, model in (((), ""), ([0.0] * 5, "plumb_bob"), ([0.0] * 5, "anything")):
        cam = camera_model(K, d, model)
        assert not cam.distorted
        np.testing.assert_array_equal(cam.undistort(np.array([[1.0, 2.0]])), [[1.0, 2.0]])
    cam = camera_model(K, LENSES["plumb_bob"], "plumb_bob")
    got = cam.undistort(np.array([[np.nan, 3.0], [300.0, 200.0], [np.inf, 0.0]]))
    assert np.isnan(got[0]).all() and np.isfinite(got[1]).all() and np.isnan(got[2]).all()
    assert cam.undistort(np.zeros((0, 2))).shape == (0, 2)


def test_a_rectified_image_uses_p_and_no_distortion():
    p = np.array([[470.0, 0.0, 325.0, 0.0], [0.0, 468.0, 240.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    cam = camera_model(K, LENSES["plumb_bob"], "plumb_bob", p.ravel(), rectified=True)
    np.testing.assert_array_equal(cam.matrix, p[:, :3])
    assert not cam.distorted


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"k": np.zeros(9)}, "camera matrix K needs positive focal lengths"),
    ({"k": K, "p": np.zeros(12), "rectified": True}, "camera matrix P needs positive focal lengths"),
    ({"k": K, "p": np.zeros(9), "rectified": True}, "P needs 12 values"),
    ({"k": K, "d": [0.1, np.nan, 0, 0, 0], "distortion_model": "plumb_bob"}, "must be finite"),
    ({"k": K, "d": [0.1, 0, 0, 0, 0], "distortion_model": "fov"}, "'fov' is not supported"),
    ({"k": K, "d": [0.1, 0, 0], "distortion_model": "plumb_bob"}, "4, 5, 8, 12 or 14 coefficients, D has 3"),
    ({"k": K, "d": [0.1, 0, 0, 0, 0.2], "distortion_model": "equidistant"}, "has 4 coefficients, D has 5"),
    ({"k": K * 2}, "K's last row must be 0 0 1"),
])
def test_what_cannot_be_read_is_refused_with_the_reason(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        camera_model(**kwargs)


def test_a_skewed_camera_matrix_maps_the_lens_normalised_coordinates():
    """The lens works on normalised coordinates, which K maps to pixels with its skew (OpenCV's own
    projection leaves the skew out, so the pixels are made here)."""
    k = K.copy()
    k[0, 1] = 30.0
    xyz = points(100, seed=1)
    lensed = cv2.projectPoints(xyz, np.zeros(3), np.zeros(3), np.eye(3), np.array(LENSES["plumb_bob"]))[0]
    raw = (np.column_stack([lensed.reshape(-1, 2), np.ones(len(xyz))]) @ k.T)[:, :2]
    cam = camera_model(k, LENSES["plumb_bob"], "plumb_bob")
    np.testing.assert_allclose(cam.undistort(raw), pinhole(xyz, k), atol=1e-6)


def test_a_binned_region_of_the_sensor_is_undistorted_in_the_sensors_pixels():
    """binning 2 x 2 of a 1000 x 800 region at (100, 60) of a 1280 x 960 sensor (image_geometry's rule): the
    boxes' pixels go to the sensor's for the lens; the image's camera matrix is K shifted and halved."""
    sensor = np.array([[1040.0, 0.0, 650.0], [0.0, 1030.0, 470.0], [0.0, 0.0, 1.0]])
    xyz = points(200, seed=2)
    lens = np.array(LENSES["plumb_bob"])
    full = cv2.projectPoints(xyz, np.zeros(3), np.zeros(3), sensor, lens)[0].reshape(-1, 2)
    image = (full - [100, 60]) / 2
    seen = ((image >= 0) & (image < [500, 400])).all(axis=1)
    cam = camera_model(sensor, LENSES["plumb_bob"], "plumb_bob", size=(1280, 960), binning=(2, 2),
                       roi=(100, 60, 1000, 800))
    assert cam.size == (500, 400) and seen.sum() > 100
    np.testing.assert_allclose(cam.matrix, [[520.0, 0.0, 275.0], [0.0, 515.0, 205.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(cam.undistort(image[seen]), pinhole(xyz[seen], cam.matrix), atol=1e-6)
    plain = camera_model(sensor, (), "", size=(1280, 960), binning=(2, 2), roi=(100, 60, 1000, 800))
    np.testing.assert_allclose(plain.matrix, cam.matrix)  # no lens: the same matrix, and nothing to undo
    assert not plain.distorted and plain.size == (500, 400)


def test_what_the_lens_model_cannot_take_back_is_nan_not_a_wrong_ray():
    # a wide fisheye (T265-like): past 90 degrees off the axis (r > 407 px here) no ray goes through it
    k = np.array([[285.7, 0.0, 425.0], [0.0, 285.6, 400.0], [0.0, 0.0, 1.0]])
    cam = camera_model(k, [-0.00371, 0.04076, -0.0385, 0.00666], "equidistant")
    got = cam.undistort(np.array([[725.0, 400.0], [844.0, 400.0]]))
    assert np.isfinite(got[0]).all() and np.isnan(got[1]).all()
    # the rational lens's corner lies beyond anything its forward model reaches (r_d at most 0.768)
    corner = camera_model(K, LENSES["rational_polynomial"], "rational_polynomial").undistort(np.zeros((1, 2)))
    assert np.isnan(corner).all()


@pytest.mark.parametrize(("model", "d"), [
    ("rational_polynomial", [0.5, -0.2, 0.001, 0.002, 0.01, 0.8, -0.1, 0.05, 0.001, -0.0005, 0.0002, 0.0001,
                             0.0, 0.0]),  # all 14, as DepthAI publishes them
    ("plumb_bob", [-0.3, 0.1, 0.001, -0.002, -0.02, 0.0, 0.0, 0.0]),
])
def test_longer_coefficient_lists_are_read_as_opencv_reads_them(model, d):
    xyz = points(100, seed=3)
    raw = project(xyz, model, d)
    seen = ((raw >= 0) & (raw < [640, 480])).all(axis=1)
    np.testing.assert_allclose(camera_model(K, d, model).undistort(raw[seen]), pinhole(xyz[seen]), atol=1e-6)
    # a driver's five values for the fisheye's four (the fifth zero) are the four
    five = camera_model(K, [*LENSES["equidistant"], 0.0], "equidistant")
    assert five.distortion.tolist() == LENSES["equidistant"]


def test_the_log_line_names_what_the_positions_are_computed_with():
    """tracker_node logs this at the first camera_info and at each change: a user checks by it which
    intrinsics, image size and lens the 3D positions use."""
    k = [520.0, 0.0, 330.0, 0.0, 515.0, 236.0, 0.0, 0.0, 1.0]
    pinhole = "fx 520.0 fy 515.0 cx 330.0 cy 236.0"
    lens = camera_model(k, [-0.35, 0.12, 0.001, -0.002, 0.0], "plumb_bob", size=(640, 480))
    assert lens.describe() == f"{pinhole}, 640 x 480, lens plumb_bob (5 coefficients)"
    assert camera_model(k).describe() == f"{pinhole}, image size not given, no lens distortion"
    sensor = [1040.0, 0.0, 660.0, 0.0, 1030.0, 472.0, 0.0, 0.0, 1.0]
    binned = camera_model(sensor, [-0.35, 0.12, 0.0, 0.0], "plumb_bob", size=(1280, 960), binning=(2, 2))
    assert binned.describe() == (f"{pinhole}, 640 x 480 (binning 2 x 2, offset 0, 0), lens plumb_bob "
                                 "(4 coefficients)")
    assert camera_model(sensor, size=(1280, 960), binning=(2, 2)).describe() == (
        f"{pinhole}, 640 x 480, no lens distortion")  # (the binning is all in the matrix)
    p = [470.0, 0.0, 325.0, 0.0, 0.0, 468.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    rect = camera_model(k, [-0.35, 0.1, 0.0, 0.0, 0.0], "plumb_bob", p, rectified=True, size=(640, 480))
    assert rect.describe() == "fx 470.0 fy 468.0 cx 325.0 cy 240.0, 640 x 480, no lens distortion"


@pytest.mark.parametrize("model", ["plumb_bob", "rational_polynomial", "equidistant", "binned"])
def test_distort_is_the_inverse_of_undistort(model):
    d = {"plumb_bob": [-0.35, 0.12, 0.001, -0.002, 0.01], "equidistant": [0.05, -0.01, 0.002, 0.0],
         "rational_polynomial": [-0.3, 0.1, 0.001, 0.0, 0.0, 0.05, 0.0, 0.0],
         "binned": [-0.35, 0.12, 0.001, -0.002, 0.01]}[model]
    k = [[600.0, 0.0, 330.0], [0.0, 590.0, 236.0], [0.0, 0.0, 1.0]]
    extra = {"binning": (2, 2), "size": (1280, 960)} if model == "binned" else {"size": (640, 480)}
    cam = camera_model(np.array(k) * ([[2], [2], [1]] if model == "binned" else 1), d,
                       "plumb_bob" if model == "binned" else model, **extra)
    pixels = np.array([[10.0, 12.0], [320.0, 240.0], [630.0, 470.0], [600.0, 30.0]]) / (2 if model == "binned"
                                                                                          else 1)
    np.testing.assert_allclose(cam.distort(cam.undistort(pixels)), pixels, atol=1e-6)
    assert np.isnan(cam.distort(np.array([[np.nan, 1.0]]))).all()


def test_a_turn_through_the_lens_is_followed_to_a_fraction_of_a_pixel():
    """The gyro's homography K R^T K^-1 is of ideal pixels: a wide-angle lens's image moves up to a third
    less at its edges. ``warp_affines`` maps each point as OpenCV's projection of the turned ray puts it;
    the pinhole's own local warps miss by pixels, and without distortion it is exactly them."""
    from ros2_tracker.cmc.gyro import rotation_homography
    from ros2_tracker.core.kalman import local_affines

    k = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
    d = np.array([-0.35, 0.12, 0.001, -0.002, 0.0])
    cam = camera_model(k, d, "plumb_bob", size=(640, 480))
    rot = cv2.Rodrigues(np.array([0.01, np.radians(2.0), 0.0]))[0]  # a 2 degree pan, a little tilt
    h = rotation_homography(k, rot)
    pixels = np.array([[320.0, 240.0], [600.0, 260.0], [40.0, 400.0], [620.0, 20.0]])
    rays = np.column_stack([cam.undistort(pixels) - k[:2, 2], np.full(4, 500.0)])  # (through the lens)
    truth = cv2.projectPoints(rays @ rot, np.zeros(3), np.zeros(3), k, d)[0].reshape(-1, 2)  # R^T ray

    def apply(warps: np.ndarray, at: np.ndarray) -> np.ndarray:
        return np.einsum("nij,nj->ni", warps[:, :, :2], at) + warps[:, :, 2]

    assert np.abs(apply(cam.warp_affines(h, pixels), pixels) - truth).max() < 1e-3
    assert np.abs(apply(local_affines(h, pixels), pixels) - truth).max() > 5.0  # the pinhole's
    near = pixels + 3.0  # first order: 3 px away, within a hundredth of a pixel
    truth_near = cv2.projectPoints(np.column_stack([cam.undistort(near) - k[:2, 2], np.full(4, 500.0)]) @ rot,
                                   np.zeros(3), np.zeros(3), k, d)[0].reshape(-1, 2)
    assert np.abs(apply(cam.warp_affines(h, pixels), near) - truth_near).max() < 0.01
    pinhole = camera_model(k, size=(640, 480))
    np.testing.assert_array_equal(pinhole.warp_affines(h, pixels), local_affines(h, pixels))
    far = np.array([[-800.0, 240.0]])  # a lost track coasting beyond the lens model's reach: the pinhole's
    assert np.isnan(cam.undistort(far)).all()
    np.testing.assert_array_equal(cam.warp_affines(h, far), local_affines(h, far))
    behind = rotation_homography(k, cv2.Rodrigues(np.array([0.0, np.radians(-100.0), 0.0]))[0])
    assert np.isnan(cam.warp_affines(behind, pixels[1:2])).all()  # turned out of the camera's reach
    assert np.isfinite(cam.warp_affines(behind, pixels[2:3])).all()  # (one on the other side: still in view)
