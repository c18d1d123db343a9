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
    p0, v = np.array([[1.5, 0.6, 3.5], [-1.2, -0.8, 2.5]]), np.array([[1.0, 0.0, 0.0], [0.3, 0.2, -0.5]])
    d = LENSES["plumb_bob"]
    h = 1e-5
    raw, raw_velocity = project(p0, "plumb_bob", d), (project(p0 + h * v, "plumb_bob", d)
                                                      - project(p0 - h * v, "plumb_bob", d)) / (2 * h)
    ideal, ideal_velocity = camera_model(K, d, "plumb_bob").undistort_motion(raw, raw_velocity)
    truth = (pinhole(p0 + h * v) - pinhole(p0 - h * v)) / (2 * h)
    np.testing.assert_allclose(ideal, pinhole(p0), atol=1e-6)
    # (a central difference over 0.05 s of motion)
    np.testing.assert_allclose(ideal_velocity, truth, atol=0.01 * np.abs(truth).max())
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
    ({"k": K, "d": [0.1, 0, 0], "distortion_model": "plumb_bob"}, "has 4 or 5 coefficients, D has 3"),
])
def test_what_cannot_be_read_is_refused_with_the_reason(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        camera_model(**kwargs)
