"""`ros2-tracker replay --offline`: the recorded tracks refined beside the online ones, both scored.

The ROS part of replay is covered by test_replay_e2e.py; this tests what ``--offline`` adds after it,
on tracks as the replay reads them back (here: the core tracker's output on TUD-Campus).
"""

import argparse
import hashlib
import json

import pytest
from conftest import require_shared

from ros2_tracker.cli.errors import UserError
from ros2_tracker.cli.replay import ReplaySource, _check_args, _offline
from ros2_tracker.io.mot import read_mot, write_results
from ros2_tracker.nodes.recording import TrackRows


@pytest.mark.data
def test_offline_refines_beside_the_online_results_and_scores_both(tmp_path):
    pytest.importorskip("trackeval", reason="trackeval is not installed (pip install trackeval)")
    from ros2_tracker.core.tracker import Tracker, TrackerConfig
    from ros2_tracker.offline import track_mot_detections

    root = require_shared("data", "TUD-Campus")
    res = track_mot_detections(read_mot(root / "det" / "det_frcnn.txt"), Tracker(TrackerConfig()), 25.0)
    rows = TrackRows(res.frames, res.ids, res.boxes_tlwh, res.scores, [], [])
    results = tmp_path / "results" / "TUD-Campus.txt"
    write_results(results, rows.frames, rows.ids, rows.boxes_tlwh, rows.scores)
    before = hashlib.sha256(results.read_bytes()).hexdigest()
    src = ReplaySource(root, "mot", "TUD-Campus", fps=25.0, length=71, gt_path=root / "gt" / "gt.txt")
    args = argparse.Namespace(offline=True, refine_config=None, frames=None)
    written = dict(_offline(src, args, rows, results, tmp_path))
    assert hashlib.sha256(results.read_bytes()).hexdigest() == before  # online untouched
    offline = tmp_path / "results" / "TUD-Campus.offline.txt"
    assert written["offline"] == offline and len(read_mot(offline)) > len(rows.frames)
    assert json.loads(written["marker"].read_text())["online_results"] == str(results)
    metrics = json.loads((tmp_path / "metrics_offline.json").read_text())
    assert list(metrics) == ["TUD-Campus online", "TUD-Campus offline"]
    assert metrics["TUD-Campus offline"]["HOTA"] >= metrics["TUD-Campus online"]["HOTA"]


def test_refine_config_needs_offline(tmp_path):
    args = argparse.Namespace(rate=0.0, model=None, detector=False, detections=None, frames=None, out=None,
                              offline=False, refine_config=tmp_path / "r.yaml")
    with pytest.raises(UserError, match="needs --offline"):
        _check_args(args)


def test_bad_refine_config_fails_before_the_replay(tmp_path):
    from ros2_tracker.core.config import ConfigError

    cfg = tmp_path / "r.yaml"
    cfg.write_text("/**:\n  ros__parameters:\n    link_max_gap_s: -1\n")
    args = argparse.Namespace(rate=0.0, model=None, detector=False, detections=None, frames=None, out=None,
                              offline=True, refine_config=cfg)
    with pytest.raises(ConfigError, match="link_max_gap_s"):
        _check_args(args)


@pytest.mark.parametrize(("second_class", "links"), [(0, 1), (2, 0)])
def test_offline_never_links_tracklets_of_two_classes(tmp_path, capsys, second_class, links):
    """A person's tracklet and a car's continuing its motion: linked only when both are one class."""
    import numpy as np

    frames = np.r_[np.arange(1, 11), np.arange(16, 26)]
    ids = np.r_[np.ones(10, int), np.full(10, 2)]
    boxes = np.c_[100 + 4.0 * frames, np.full(20, 50.0), np.full(20, 40.0), np.full(20, 100.0)]
    classes = np.r_[np.zeros(10, int), np.full(10, second_class)]
    rows = TrackRows(frames, ids, boxes, np.ones(20), [], [], classes)
    results = tmp_path / "results" / "seq.txt"
    write_results(results, frames, ids, boxes, np.ones(20))
    cfg = tmp_path / "refine.yaml"
    cfg.write_text("/**:\n  ros__parameters:\n    link_without_appearance: true\n")
    src = ReplaySource(tmp_path, "mot", "seq", fps=25.0, length=25, gt_path=None)
    args = argparse.Namespace(offline=True, refine_config=cfg, frames=None)
    written = dict(_offline(src, args, rows, results, tmp_path))
    assert len(json.loads(written["marker"].read_text())["links"]) == links
    assert "not linked" not in capsys.readouterr().err


def test_offline_says_that_without_appearance_nothing_is_linked(tmp_path, capsys):
    import numpy as np

    rows = TrackRows(np.arange(1, 4), np.ones(3, int), np.tile([0.0, 0, 10, 20], (3, 1)), np.ones(3), [], [])
    results = tmp_path / "results" / "seq.txt"
    write_results(results, rows.frames, rows.ids, rows.boxes_tlwh, rows.scores)
    src = ReplaySource(tmp_path, "mot", "seq", fps=25.0, length=3, gt_path=None)
    _offline(src, argparse.Namespace(offline=True, refine_config=None, frames=None), rows, results, tmp_path)
    assert "no appearance, so --offline links no tracklets" in capsys.readouterr().err


def test_problems_the_nodes_logged_are_said_after_the_replay(tmp_path, capsys):
    from ros2_tracker.cli.replay import warn_logged_problems

    log = tmp_path / "nodes.log"
    log.write_text("[INFO] [1.0] [replay_node]: replay done: 40 frames\n"
                   "[ERROR] [1.1] [replay_node]: bag_0.mcap: truncated at byte 101545: read 0 messages\n"
                   "[WARN] [1.2] [recorder]: published but never received (the recorder fell behind): "
                   "/tracks 44\n"
                   "[WARN] [1.3] [tracker]: 3 detection message(s) never reached the tracker (3 in all)\n"
                   "[WARN] [1.4] [tracker]: time went backwards (looped bag or restarted source?); "
                   "resetting the tracker\n"
                   "[WARN] [1.5] [tracker]: detections stamped 0.100000 s are 0.2 s behind the last "
                   "tracked ones: dropped as late (1 so far)\n")
    assert warn_logged_problems(log) == 5
    err = capsys.readouterr().err
    assert "the nodes logged 5 problem(s)" in err and "truncated at byte" in err and "/tracks 44" in err
    log.write_text("[INFO] [1.0] [replay_node]: replay done: 40 frames\n")
    assert warn_logged_problems(log) == 0 and capsys.readouterr().err == ""
