"""Offline output files: names, the marker, and the frame rate of bag replays."""

import json

import numpy as np
import pytest

from ros2_tracker.io.mot import read_mot
from ros2_tracker.refine import RefineConfig
from ros2_tracker.refine.outputs import (
    fps_from_stamps,
    marker_path,
    offline_results_path,
    online_results_path,
    refine_and_write,
)


def test_file_names(tmp_path):
    assert online_results_path(tmp_path / "RES.txt") == tmp_path / "RES.online.txt"
    assert offline_results_path(tmp_path / "results" / "seq.txt") == tmp_path / "results" / "seq.offline.txt"
    assert marker_path(tmp_path / "RES.txt") == tmp_path / "RES.txt.offline.json"


def test_refine_and_write_marks_the_output_and_refuses_the_online_file(tmp_path):
    frames = np.array([1, 2, 6, 7])
    ids = np.array([3, 3, 3, 3])
    boxes = np.array([[10.0, 10, 20, 50], [12, 10, 20, 50], [20, 10, 20, 50], [22, 10, 20, 50]])
    online = tmp_path / "on.txt"
    _, marker = refine_and_write(frames, ids, boxes, np.ones(4), output=tmp_path / "off.txt",
                                 online_path=online, fps=10.0, config=RefineConfig())
    rows = read_mot(tmp_path / "off.txt")
    assert rows.frames.tolist() == [1, 2, 3, 4, 5, 6, 7]
    np.testing.assert_allclose(rows.boxes_tlwh[2:5, 0], [14, 16, 18])
    note = json.loads(marker.read_text())
    assert note["offline"] is True and note["summary"]["interpolated_rows"] == 3
    assert not online.exists()
    with pytest.raises(ValueError, match="overwrite the online"):
        refine_and_write(frames, ids, boxes, np.ones(4), output=online, online_path=online, fps=10.0,
                         config=RefineConfig())


def test_the_world_columns_are_carried_and_interpolated_through_the_refinement(tmp_path):
    """Positions from a depth camera (replay's world columns): the online rows keep theirs, rows filled in
    a gap get the straight line between the gap's ends, or none when an end had none; linked ids too."""
    frames = np.array([1, 2, 6, 1, 4, 7])
    ids = np.array([3, 3, 3, 5, 5, 5])
    boxes = np.array([[10.0, 10, 20, 50], [12, 10, 20, 50], [20, 10, 20, 50],
                      [200, 10, 20, 50], [206, 10, 20, 50], [212, 10, 20, 50]])
    world = np.array([[1.0, 0.5, 4.0], [1.1, 0.5, 4.2], [1.5, 0.5, 5.0],
                      [np.nan] * 3, [-1.0, 0.2, 3.0], [-0.7, 0.2, 3.6]])
    refined, _ = refine_and_write(frames, ids, boxes, np.ones(6), output=tmp_path / "off.txt",
                                  online_path=tmp_path / "on.txt", fps=10.0,
                                  config=RefineConfig(link=False), world=world)
    got = {(f, i): w for f, i, w in zip(refined.frames.tolist(), refined.ids.tolist(), refined.world.tolist(),
                                        strict=True)}
    for f, i, w in zip(frames.tolist(), ids.tolist(), world.tolist(), strict=True):
        np.testing.assert_array_equal(got[f, i], w)  # the online rows' own
    for f in (3, 4, 5):  # id 3's gap from frame 2 to 6
        np.testing.assert_allclose(got[f, 3], [1.1 + 0.1 * (f - 2), 0.5, 4.2 + 0.2 * (f - 2)])
    assert np.isnan(got[2, 5]).all() and np.isnan(got[3, 5]).all()  # from a row without a position
    np.testing.assert_allclose(got[5, 5], [-0.9, 0.2, 3.2])
    text = (tmp_path / "off.txt").read_text().splitlines()
    assert text[0].endswith(",1.000,0.500,4.000"), text
    assert "5,5,208.00,10.00,20.00,50.00,1.0000,-0.900,0.200,3.200" in text, text
    assert "2,5,202.00,10.00,20.00,50.00,1.0000,-1,-1,-1" in text, text
    with pytest.raises(ValueError, match=r"world must be \(N, 3\)"):
        refine_and_write(frames, ids, boxes, np.ones(6), output=tmp_path / "o2.txt",
                         online_path=tmp_path / "on", fps=10.0, config=RefineConfig(), world=world[:, :2])


@pytest.mark.parametrize("stamps,fps", [
    ([0, 100_000_000, 200_000_000, 200_000_000, 400_000_000], 10.0),  # a repeat and a missing frame
    ([5], 30.0),
    ([], 30.0),
])
def test_fps_from_stamps(stamps, fps):
    assert fps_from_stamps(stamps) == pytest.approx(fps)
