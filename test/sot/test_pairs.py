"""Training data of the learned SOT models: crop geometry, GOTURN's motion model, pairs, flicker."""

import cv2
import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.core.costs import iou_matrix
from ros2_tracker.sot.pairs import (
    FrameStore,
    GtTrack,
    PairSampler,
    box_from_window,
    box_to_window,
    check_box,
    context_window,
    crop_windows,
    load_gt_tracks,
    motion_jitter,
    simulate_flicker,
)


@pytest.fixture(scope="module")
def tud():
    root = require_shared("data", "TUD-Campus")
    return root, load_gt_tracks(root, min_length=20)


def test_a_centred_box_sits_in_the_middle_half_of_its_context_window():
    box = np.array([[100.0, 50.0, 140.0, 150.0]])
    win = context_window(box, 2.0)
    np.testing.assert_allclose(win, [[80.0, 0.0, 160.0, 200.0]])
    np.testing.assert_allclose(box_to_window(box, win), [[0.25, 0.25, 0.75, 0.75]])
    np.testing.assert_allclose(box_from_window(box_to_window(box, win), win), box)


def test_crop_of_an_integer_window_at_scale_one_is_the_image_region(tud):
    root, _ = tud
    frame = FrameStore().frame(root, 1)
    crop = crop_windows(frame, np.array([[200.0, 100.0, 296.0, 196.0]]), 96)[0]
    np.testing.assert_array_equal(crop, frame[100:196, 200:296])
    # outside the image: edge pixels repeat, no black border
    edge = crop_windows(frame, np.array([[-48.0, -48.0, 48.0, 48.0]]), 96)[0]
    np.testing.assert_array_equal(edge[0, 0], frame[0, 0])


def test_pairs_put_the_ground_truth_box_where_the_search_crop_shows_the_target(tud):
    _, tracks = tud
    frames = FrameStore()
    sampler = PairSampler(tracks, frames, size=96, still_fraction=1.0)  # both crops from one frame
    rng = np.random.default_rng(3)
    pairs = sampler.sample(12, rng)
    assert pairs.targets.shape == pairs.searches.shape == (12, 96, 96, 3)
    assert pairs.targets.dtype == np.uint8 and pairs.boxes_norm.shape == (12, 4)
    # the jitter moved the window, so the target is off-centre in most pairs
    centred = np.tile([0.25, 0.25, 0.75, 0.75], (12, 1))
    assert np.abs(pairs.boxes_norm - centred).max() > 0.05
    # pixels of the search crop inside boxes_norm look like the target crop's central half
    for target, search, b in zip(pairs.targets, pairs.searches, pairs.boxes_norm, strict=True):
        x1, y1, x2, y2 = np.clip(b * 96, 0, 96)
        if x2 - x1 < 8 or y2 - y1 < 8:
            continue
        seen = cv2.resize(search[int(y1):int(y2), int(x1):int(x2)], (16, 32)).astype(float)
        truth = cv2.resize(target[24:72, 24:72], (16, 32)).astype(float)
        wrong = cv2.resize(search[:48, :24] if x1 > 24 else search[48:, 72:], (16, 32)).astype(float)
        assert np.abs(seen - truth).mean() < np.abs(wrong - truth).mean()
        assert np.abs(seen - truth).mean() < 20


def test_video_pairs_take_the_target_from_an_earlier_frame(tud):
    _, tracks = tud
    sampler = PairSampler(tracks, FrameStore(), size=64, still_fraction=0.0, video_jitter=0.0, max_gap=1)
    pairs = sampler.sample(16, np.random.default_rng(0))
    # without jitter the window is centred on the previous box: slow walkers stay near the centre
    iou = iou_matrix(pairs.boxes_norm.astype(float), np.array([[0.25, 0.25, 0.75, 0.75]]))[:, 0]
    assert np.median(iou) > 0.7


def test_motion_jitter_follows_the_laplace_model_and_its_clips():
    rng = np.random.default_rng(0)
    box = np.tile([100.0, 100.0, 150.0, 200.0], (20000, 1))
    out = motion_jitter(box, rng, shift_scale=0.2, size_scale=1 / 15, max_size_change=0.4)
    shift_x = ((out[:, 0] + out[:, 2]) / 2 - 125.0) / 50.0
    assert np.median(np.abs(shift_x)) == pytest.approx(0.2 * np.log(2), rel=0.05)  # Laplace: b ln 2
    assert np.abs(shift_x).max() <= 0.5 + 1e-9
    scale = (out[:, 2] - out[:, 0]) / 50.0
    assert scale.min() >= 0.6 - 1e-9 and scale.max() <= 1.4 + 1e-9
    assert np.median(np.abs(scale - 1)) == pytest.approx(np.log(2) / 15, rel=0.05)


def test_flicker_drops_jitters_and_keeps_the_start(tud):
    _, tracks = tud
    track = max(tracks, key=lambda t: len(t.frames))
    long = GtTrack(track.sequence, 1, np.arange(2000), np.tile(track.boxes_xyxy[:1], (2000, 1)))
    dets, source = simulate_flicker(long, {}, np.random.default_rng(1), p_drop=0.3, jitter=0.05)
    assert source[0] == 1 and np.array_equal(dets[0], long.boxes_xyxy[0])
    missing = ~np.isfinite(dets).all(1)
    assert np.array_equal(missing, source == 0)
    assert missing.mean() == pytest.approx(0.3, abs=0.06)
    w = long.boxes_xyxy[0, 2] - long.boxes_xyxy[0, 0]
    assert np.nanstd(dets[1:, 0] - long.boxes_xyxy[0, 0]) / w == pytest.approx(0.05, rel=0.15)


@pytest.mark.parametrize("p_drop,run", [(0.25, 2.0), (0.5, 2.0), (0.6, 1.5), (0.9, 5.0)])
def test_flicker_drops_the_share_asked_for_in_runs_of_the_mean_length(p_drop, run):
    n = 20000
    track = GtTrack("s", 1, np.arange(n), np.tile([10.0, 10, 50, 100], (n, 1)))
    _, source = simulate_flicker(track, {}, np.random.default_rng(0), p_drop=p_drop, mean_drop_run=run,
                                 jitter=0.0)
    missing = source == 0
    assert missing.mean() == pytest.approx(p_drop, abs=0.02)  # 0.6 / 1.5 dropped every frame
    q = p_drop / (run * (1 - p_drop) + p_drop)  # a run may follow a run: gaps of m / (1 - q) frames
    starts = np.count_nonzero(missing[1:] & ~missing[:-1])
    assert missing.sum() / starts == pytest.approx(run / (1 - q), rel=0.1)


def test_mot15_ground_truth_with_world_coordinates_keeps_its_tracks(tud, tmp_path):
    """MOT15's last three columns are world coordinates (TUD-Stadtmitte's, >= 0), not MOT17's class and
    visibility: every track stays (they were all dropped as 'not pedestrians')."""
    root, tracks = tud
    copy = tmp_path / "seq"
    (copy / "gt").mkdir(parents=True)
    (copy / "img1").symlink_to(root / "img1")
    (copy / "seqinfo.ini").write_text((root / "seqinfo.ini").read_text())
    rows = [ln.split(",") for ln in (root / "gt" / "gt.txt").read_text().split()]
    (copy / "gt" / "gt.txt").write_text("".join(",".join([*r[:7], "4.5", "5.5", "0"]) + "\n" for r in rows))
    again = load_gt_tracks(copy, min_length=20)
    assert [t.track_id for t in again] == [t.track_id for t in tracks]
    assert all(np.array_equal(a.boxes_xyxy, t.boxes_xyxy) for a, t in zip(again, tracks, strict=True))


@pytest.mark.parametrize("box,match", [
    ([10, 10, 10, 50], "zero or negative size"), ([10, np.nan, 20, 50], "NaN"),
    ([1000, 1000, 1100, 1100], "outside"), ([1, 2, 3], "4 numbers"),
])
def test_check_box_rejects_unusable_boxes(box, match):
    with pytest.raises(ValueError, match=match):
        check_box(box, (480, 640))


def test_ground_truth_tracks_are_clipped_and_have_images(tud):
    _, tracks = tud
    assert len(tracks) >= 5
    for t in tracks:
        assert (np.diff(t.frames) > 0).all()
        assert (t.boxes_xyxy >= 0).all() and (t.boxes_xyxy[:, [0, 2]] <= 640).all()
