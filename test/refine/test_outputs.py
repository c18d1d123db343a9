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


@pytest.mark.parametrize("stamps,fps", [
    ([0, 100_000_000, 200_000_000, 200_000_000, 400_000_000], 10.0),  # a repeat and a missing frame
    ([5], 30.0),
    ([], 30.0),
])
def test_fps_from_stamps(stamps, fps):
    assert fps_from_stamps(stamps) == pytest.approx(fps)
