"""Plots: id timelines and metric bars are written as images with the expected content."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from ros2_tracker.viz.colours import colour_for_id
from ros2_tracker.viz.plots import id_segments, plot_bar_metrics, plot_ids_over_time


def test_id_segments_splits_runs_and_orders_by_first_frame():
    frames = np.array([5, 6, 1, 2, 3, 5, 6, 3])
    ids = np.array([1, 1, 9, 9, 9, 9, 9, 9])  # the duplicate (3, 9) is ignored
    assert id_segments(frames, ids) == {9: [(1, 3), (5, 6)], 1: [(5, 6)]}
    assert id_segments(np.empty(0), np.empty(0)) == {}
    with pytest.raises(ValueError):
        id_segments(np.array([1, 2]), np.array([1]))


def _has_colour(img, bgr, tol=10):
    return bool((np.abs(img.astype(int) - np.array(bgr)).max(axis=2) <= tol).any())


def test_ids_over_time_draws_each_id_in_its_colour_beside_ground_truth(tmp_path):
    frames = np.concatenate([np.arange(1, 40), np.arange(10, 60), np.arange(70, 90)])
    ids = np.concatenate([np.full(39, 4), np.full(50, 11), np.full(20, 4)])
    p = plot_ids_over_time(frames, ids, tmp_path / "ids.png", gt_frames=np.arange(1, 90),
                           gt_ids=np.full(89, 2))
    img = cv2.imread(str(p))
    assert img.shape[1] == 1200 and img.shape[0] >= 200
    for i in (4, 11):
        assert _has_colour(img[:, :600], colour_for_id(i))
    assert _has_colour(img[:, 600:], colour_for_id(2)) and not _has_colour(img[:, 600:], colour_for_id(11))
    single = cv2.imread(str(plot_ids_over_time(frames, ids, tmp_path / "one.png")))
    assert single.shape[1] == 600
    svg = plot_ids_over_time(frames, ids, tmp_path / "ids.svg")
    assert svg.read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError):
        plot_ids_over_time(frames, ids, tmp_path / "x.png", gt_frames=frames)


def test_bar_metrics_writes_a_chart(tmp_path):
    p = plot_bar_metrics({"sort": {"MOTA": 0.7, "IDF1": 0.6}, "reid": {"MOTA": 0.72, "IDF1": 0.7,
                                                                     "HOTA": 0.55}},
                         tmp_path / "bars" / "m.png", title="synthetic", ylabel="score")
    img = cv2.imread(str(p))
    assert img is not None and img.shape[0] == 400
    with pytest.raises(ValueError):
        plot_bar_metrics({}, tmp_path / "e.png")


def test_importing_viz_loads_neither_opencv_nor_matplotlib():
    code = ("import sys, ros2_tracker.viz, ros2_tracker.viz.plots; "
            "print('cv2' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
