"""ECC camera-motion estimation on real frames, the box warp, and the core tracker's compensation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.cmc import CmcConfig, CmcWarning, EccAligner, identity_warp, warp_boxes
from ros2_tracker.core import kalman
from ros2_tracker.core.config import ConfigError
from ros2_tracker.core.tracker import Tracker


@pytest.fixture(scope="module")
def frame():
    import cv2

    path = require_shared("data", "TUD-Campus", "img1", "000001.jpg")
    return cv2.imread(str(path))


def shifted(image, warp):
    import cv2

    return cv2.warpAffine(image, np.float32(warp), (image.shape[1], image.shape[0]),
                          borderMode=cv2.BORDER_REFLECT)


@pytest.mark.data
@pytest.mark.parametrize("motion", ["translation", "euclidean", "affine"])
def test_recovers_a_known_shift_of_a_real_frame(frame, motion):
    truth = np.array([[1.0, 0.0, 7.0], [0.0, 1.0, -4.0]])
    aligner = EccAligner(CmcConfig(cmc_motion=motion))
    np.testing.assert_allclose(aligner.estimate(frame), identity_warp())  # first frame: nothing to align
    est = aligner.estimate(shifted(frame, truth))
    np.testing.assert_allclose(est[:, :2], truth[:, :2], atol=0.01, rtol=0)
    np.testing.assert_allclose(est[:, 2], truth[:, 2], atol=0.15, rtol=0)  # [px], ECC at half resolution
    assert aligner.frames == 2 and aligner.failures == 0 and aligner.seconds > 0


@pytest.mark.data
def test_recovers_a_small_rotation(frame):
    import cv2

    truth = cv2.getRotationMatrix2D((320.0, 240.0), 1.5, 1.0)
    aligner = EccAligner(CmcConfig(cmc_motion="euclidean", cmc_iterations=100))
    aligner.estimate(frame)
    est = aligner.estimate(shifted(frame, truth))
    corners = np.array([[0.0, 0.0, 1.0], [640.0, 480.0, 1.0]])
    assert np.abs(corners @ est.T - corners @ truth.T).max() < 0.5


@pytest.mark.data
def test_a_float_image_is_aligned_and_an_unsupported_dtype_is_a_clear_error(frame):
    truth = np.array([[1.0, 0.0, 7.0], [0.0, 1.0, -4.0]])
    aligner = EccAligner()
    aligner.estimate(frame.astype(np.float64))  # OpenCV itself has no float64 colour conversion
    np.testing.assert_allclose(aligner.estimate(shifted(frame, truth).astype(np.float64)), truth, atol=0.15)
    for image in (frame > 128, frame.astype(np.int64)[..., 0]):
        with pytest.raises(ValueError, match="uint8, uint16 or float image"):
            EccAligner().estimate(image)


def test_failure_gives_the_identity_with_a_warning():
    aligner = EccAligner()
    flat = np.full((120, 160, 3), 128, dtype=np.uint8)
    aligner.estimate(flat)
    with pytest.warns(CmcWarning, match="identity"):
        warp = aligner.estimate(flat)
    np.testing.assert_array_equal(warp, identity_warp())
    assert aligner.failures == 1


def test_size_change_and_reset_give_the_identity():
    rng = np.random.default_rng(0)
    aligner = EccAligner()
    aligner.estimate(rng.integers(0, 255, (100, 100, 3), dtype=np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(aligner.estimate(rng.integers(0, 255, (80, 90, 3), dtype=np.uint8)),
                                      identity_warp())
    with pytest.raises(ValueError, match="image"):
        aligner.estimate(np.zeros((10, 10, 4), dtype=np.uint8))


@pytest.mark.data
def test_two_views_of_different_scenes_give_the_identity_not_a_wrong_warp(frame):
    """A cut: TUD-Campus then a MOT17-05 frame (same size). ECC may converge on a poor correlation
    (0.3-0.4 here, 0.95-1 between consecutive frames); below cmc_min_correlation nothing is moved."""
    import cv2

    other = cv2.imread(str(require_shared("data", "MOT17-mini", "train", "MOT17-05-FRCNN", "img1",
                                          "000001.jpg")))
    assert other.shape == frame.shape
    for motion in ("euclidean", "affine"):
        aligner = EccAligner(CmcConfig(cmc_motion=motion))
        aligner.estimate(frame)
        with pytest.warns(CmcWarning):
            np.testing.assert_array_equal(aligner.estimate(other), identity_warp())
        assert aligner.failures == 1
        truth = np.array([[1.0, 0.0, 7.0], [0.0, 1.0, -4.0]])  # the same scene moved still aligns
        np.testing.assert_allclose(aligner.estimate(shifted(other, truth)), truth, atol=0.15)


@pytest.mark.data
def test_a_change_of_size_gives_the_identity_even_when_the_scaled_frames_match(frame):
    import cv2

    aligner = EccAligner()  # both scale down to 320 x 240 for ECC
    aligner.estimate(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(aligner.estimate(cv2.resize(frame, (1280, 960))), identity_warp())


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="cmc_blur"):
        CmcConfig(cmc_blur=4)
    with pytest.raises(ConfigError, match="cmc_motion"):
        CmcConfig(cmc_motion="homography")


def test_warp_boxes_moves_centres_and_scales_sizes():
    boxes = np.array([[10.0, 20.0, 30.0, 60.0]])
    np.testing.assert_allclose(warp_boxes(boxes, [[1, 0, 5], [0, 1, -2]]), [[15.0, 18.0, 35.0, 58.0]])
    np.testing.assert_allclose(warp_boxes(boxes, [[2, 0, 0], [0, 2, 0]]), [[20.0, 40.0, 60.0, 120.0]])


def test_kalman_warp_moves_means_and_keeps_rotation_covariance():
    mean, cov = kalman.initiate(np.array([[100.0, 50.0, 20.0, 40.0]]), kalman.MotionNoise())
    mean[:, 4:6] = [10.0, 0.0]
    c, s = np.cos(np.pi / 2), np.sin(np.pi / 2)
    out_mean, out_cov = kalman.warp_affine(mean, cov, [[c, -s, 3.0], [s, c, 4.0]])
    np.testing.assert_allclose(out_mean[0, :2], [-50.0 + 3.0, 100.0 + 4.0], atol=1e-9)
    np.testing.assert_allclose(out_mean[0, 4:6], [0.0, 10.0], atol=1e-9)
    np.testing.assert_allclose(out_mean[0, 2:4], [20.0, 40.0])
    np.testing.assert_allclose(out_cov, cov)
    _, scaled = kalman.warp_affine(mean, cov, [[2, 0, 0], [0, 2, 0]])
    np.testing.assert_allclose(scaled, 4 * cov)


def test_tracker_apply_camera_motion_moves_every_track():
    tracker = Tracker()
    boxes = np.array([[10.0, 10.0, 30.0, 50.0], [100.0, 100.0, 140.0, 180.0]])
    tracker.update(boxes, stamp=0.0)
    tracker.apply_camera_motion(np.array([[1.0, 0.0, 12.0], [0.0, 1.0, -6.0]]))
    moved = boxes + np.array([12.0, -6.0, 12.0, -6.0])
    np.testing.assert_allclose(tracker.tracks().boxes_xyxy, moved)
    # the moved tracks match detections at the moved place
    out = tracker.update(moved, stamp=0.1)
    assert (out.det_indices >= 0).all() and out.ids.tolist() == [1, 2]
    with pytest.raises(ValueError, match="2, 3"):
        tracker.apply_camera_motion(np.eye(4))
    with pytest.raises(ValueError, match=r"finite .* got NaN or inf entries"):
        tracker.apply_camera_motion(np.full((2, 3), np.nan))
    Tracker().apply_camera_motion(identity_warp())  # no tracks: nothing to move


def test_sequence_motion_moves_the_tracker_and_survives_missing_images(tmp_path):
    import cv2

    from ros2_tracker.cmc.sequence import SequenceMotion
    from ros2_tracker.io.video import open_frame_source

    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (7, 7), 2.0)
    for frame in (1, 2, 4):  # frame 3's image is missing
        shift = np.array([[1.0, 0.0, 3.0 * (frame - 1)], [0.0, 1.0, 0.0]])
        cv2.imwrite(str(tmp_path / f"{frame:06d}.png"), shifted(texture, shift))
    tracker = Tracker()
    motion = SequenceMotion(tracker, EccAligner(), open_frame_source(tmp_path))
    box = np.array([[100.0, 80.0, 140.0, 160.0]])
    for frame in (1, 2, 3, 4):
        before = tracker.tracks().boxes_xyxy.copy()
        assert motion(frame, box) is None  # no feature source chained: no appearance
        moved = tracker.tracks().boxes_xyxy
        if frame == 2:  # the image moved 3 px right: so was the track, before the update
            np.testing.assert_allclose(moved - before, [[3.0, 0.0, 3.0, 0.0]], atol=0.2)
        if frame == 3:  # no image: no motion
            np.testing.assert_array_equal(moved, before)
        tracker.update(box + np.array([3.0, 0.0, 3.0, 0.0]) * (frame - 1), stamp=0.1 * frame)
    assert motion.frames_without_image == 1 and motion.aligner.frames == 3 and motion.aligner.failures == 0


@pytest.mark.data
def test_moving_objects_left_out_do_not_read_as_camera_motion(frame):
    # a static camera: only a large region (a crowd walking by) moves 8 px to the right
    box = np.array([[100.0, 60.0, 500.0, 420.0]])
    moved = frame.copy()
    x0, y0, x1, y1 = box[0].astype(int)
    moved[y0:y1, x0 + 8:x1 + 8] = frame[y0:y1, x0:x1]
    config = CmcConfig(cmc_motion="translation")
    fooled, masked = EccAligner(config), EccAligner(config)
    fooled.estimate(frame)
    masked.estimate(frame)
    assert abs(fooled.estimate(moved)[0, 2]) > 1.0  # the moving region pulls ECC along
    assert np.abs(masked.estimate(moved, box + np.array([0.0, 0.0, 8.0, 0.0]))[:, 2]).max() < 0.3
    unmasked = EccAligner(config.replace(cmc_exclude_boxes=False))  # boxes given, but not used
    unmasked.estimate(frame)
    assert abs(unmasked.estimate(moved, box)[0, 2]) > 1.0
