"""Drawing tracks and detections: colours, solid/dashed boxes, labels, trajectories, bad input."""

import numpy as np
import pytest

from ros2_tracker.core import TrackState
from ros2_tracker.viz.colours import colour_for_id, rgb_for_id
from ros2_tracker.viz.draw import draw_detections, draw_tracks


def blank(h=240, w=320):
    return np.zeros((h, w, 3), np.uint8)


def test_colour_for_id_is_stable_and_spreads_neighbouring_ids():
    assert colour_for_id(7) == colour_for_id(7)
    r, g, b = rgb_for_id(7)
    assert colour_for_id(7) == (round(255 * b), round(255 * g), round(255 * r))
    colours = np.array([colour_for_id(i) for i in range(1, 21)], dtype=float)
    d = np.linalg.norm(colours[:, None] - colours[None], axis=2)
    assert d[np.triu_indices(20, 1)].min() > 20
    assert d[np.arange(19), np.arange(1, 20)].min() > 80  # consecutive ids look clearly different


def test_confirmed_box_is_drawn_in_the_id_colour_and_input_is_untouched():
    img = blank()
    out = draw_tracks(img, [3], np.array([[40.0, 60.0, 140.0, 200.0]]))
    assert not img.any()
    c = colour_for_id(3)
    assert tuple(out[130, 40]) == c and tuple(out[130, 140]) == c and tuple(out[200, 90]) == c
    assert not out[130, 90].any()  # inside stays empty
    assert (np.abs(out[45:60, 40:60].astype(int) - c).sum(axis=2) == 0).any()  # label above the box


def test_lost_tracks_are_dashed_and_faded_and_tentative_ones_thin():
    boxes = np.array([[40.0, 60.0, 240.0, 200.0]])
    lost = draw_tracks(blank(), [3], boxes, states=[TrackState.LOST])
    solid = draw_tracks(blank(), [3], boxes, states=[TrackState.CONFIRMED])
    edge_lost = lost[200, 45:235].any(axis=1)
    assert edge_lost.mean() < 0.8 and edge_lost.mean() > 0.3  # gaps between dashes
    assert solid[200, 45:235].any(axis=1).all()
    assert lost[200, 45:235].max(axis=0).astype(int).tolist() != list(colour_for_id(3))
    thin = draw_tracks(blank(), [3], boxes, states=[TrackState.TENTATIVE])
    assert (thin[190:210, 120].any(axis=1)).sum() < (solid[190:210, 120].any(axis=1)).sum()


def test_trajectory_polyline_and_one_sigma_ellipse():
    boxes = np.array([[100.0, 20.0, 140.0, 100.0]])  # centre (120, 60)
    traj = np.array([[[120.0, 90.0], [120.0, 120.0], [120.0, 150.0]]])
    cov = np.array([[[4.0, 0.0, 4.0], [16.0, 0.0, 16.0], [400.0, 0.0, 100.0]]])  # last: 20 px x 10 px
    out = draw_tracks(blank(), [5], boxes, trajectories=traj, trajectory_cov=cov)
    assert out[110:140, 119:122].any()  # the polyline between predicted points
    assert out[150, 138:143].any() and out[150, 97:102].any()  # ellipse 20 px left and right
    assert out[139:142, 118:123].any() and out[159:162, 118:123].any()  # 10 px above and below
    assert not out[150, 128:134].any()  # inside the ellipse, away from the line
    without = draw_tracks(blank(), [5], boxes)
    assert not without[110:170].any()


def test_custom_labels_and_bad_input():
    boxes = np.array([[40.0, 60.0, 140.0, 200.0]])
    a = draw_tracks(blank(), [3], boxes)
    b = draw_tracks(blank(), [3], boxes, labels=["person 3 (0.93)"])
    assert (b[40:60].any(axis=2).sum()) > (a[40:60].any(axis=2).sum())
    with pytest.raises(ValueError, match="ids"):
        draw_tracks(blank(), [1, 2], boxes)
    with pytest.raises(ValueError, match="uint8"):
        draw_tracks(np.zeros((10, 10, 3), np.float32), [1], boxes)
    out = draw_tracks(blank(), [], np.empty((0, 4)))
    assert not out.any()


def test_far_away_but_finite_coordinates_are_drawn_at_the_edge_without_errors():
    """A box at x2 = 3e9, a path point at 1e12, a variance of 1e20 (a diverged track) overflowed OpenCV's
    int32 points (a lost box a million pixels wide also took seconds to dash: now clipped like the rest)."""
    boxes = np.array([[10.0, 20.0, 3e9, 100.0], [-1e7, -1e7, 1e7, 1e7]])
    traj = np.array([[[1e12, 50.0]], [[160.0, 120.0]]])
    cov = np.array([[[1e20, 0.0, 1e20]], [[4.0, 0.0, 4.0]]])
    out = draw_tracks(blank(), [1, 2], boxes, [TrackState.CONFIRMED, TrackState.LOST], traj, cov)
    assert out[20, 100:300].any()  # the first box's top edge runs to the right border
    assert draw_detections(blank(), boxes[:1]).any()


def test_draw_detections_draws_boxes_and_scores():
    out = draw_detections(blank(), np.array([[10.0, 10.0, 110.0, 210.0]]), np.array([0.87]))
    assert tuple(out[100, 10]) == (255, 255, 255) and tuple(out[10, 60]) == (255, 255, 255)
    assert out[190:208, 12:50].any()  # the score text inside the bottom-left corner
