"""The model's inputs: frame rate and image size are normalised out; gaps and lost tails are marked."""

from __future__ import annotations

import numpy as np

from ros2_tracker.motion.features import decode_outputs, encode_history, resample_history

GRID, STEP = 8, 0.2


def _walk(fps: float, scale: float = 1.0, seconds: float = 2.0):
    """One person walking right-and-down at constant speed, sampled at ``fps``, ending at t = 0."""
    t = (np.arange(round(seconds * fps) + 1) - round(seconds * fps)) / fps
    boxes = scale * np.column_stack([300 + 60 * t, 200 + 10 * t, np.full_like(t, 40), np.full_like(t, 100)])
    return boxes[None], np.ones((1, len(t)), dtype=bool), t


def _features(fps: float, scale: float = 1.0):
    boxes, valid, t = _walk(fps, scale)
    grid, ok = resample_history(boxes, valid, t, 0.0, GRID, STEP)
    mean = np.concatenate([boxes[0, -1], [60 * scale, 10 * scale, 0, 0]])[None]
    return encode_history(grid, ok, STEP, mean)


def test_frame_rate_and_image_size_are_normalised_out():
    ref = _features(25.0)
    for fps, scale in ((7.0, 1.0), (30.0, 1.0), (25.0, 2.5)):
        np.testing.assert_allclose(_features(fps, scale).features, ref.features, atol=1e-5)
    np.testing.assert_allclose(ref.features[0, 1:, 5], 0.6, atol=1e-5)  # 60 px/s / 100 px height


def test_gaps_and_lost_tails_are_invalid_grid_points():
    boxes, valid, t = _walk(10.0)
    valid[0, -6:] = False  # lost for the last 0.6 s
    valid[0, 9:12] = False  # a 0.4 s gap: interpolated
    grid, ok = resample_history(boxes, valid, t, 0.0, GRID, STEP)
    assert ok[0].tolist() == [True, True, True, True, True, False, False, False]
    np.testing.assert_allclose(grid[0, 2], [300 - 60.0, 190, 40, 100])  # t = -1.0 s, between measurements
    enc = encode_history(grid, ok, STEP, np.zeros((1, 8)))
    assert enc.features[0, 0, 7] == np.float32(0.6)  # seconds since the last valid grid point
    valid[0, 2:14] = False  # a 1.3 s gap is longer than max_gap_s (1 s): not bridged
    _, ok = resample_history(boxes, valid, t, 0.0, GRID, STEP)
    assert ok[0].tolist() == [False, False, False, False, True, False, False, False]


def test_decoding_a_zero_correction_is_the_constant_velocity_base():
    enc = _features(25.0)
    times = np.array([0.0, 1.0, 2.0])
    out = np.zeros((1, 3, 5))
    centres, cov = decode_outputs(out, enc, times)
    np.testing.assert_allclose(centres[0], [[300, 200], [360, 210], [420, 220]], atol=1e-9)
    np.testing.assert_allclose(cov[0, :, 0], 100.0**2)  # log sigma 0 = one box height
