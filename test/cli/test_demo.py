"""`ros2-tracker demo`: synthetic scene and a real sequence end to end (results, metrics, video, plot)."""

import json
import subprocess

import pytest
from conftest import CLI, require_shared

from ros2_tracker.io.mot import read_mot


def test_demo_on_synthetic_scene(tmp_path):
    r = subprocess.run([str(CLI), "demo", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())["synthetic-0"]
    assert metrics["HOTA"] > 0.4 and metrics["IDF1"] > 0.5  # floors well below the measured 0.52 / 0.61
    assert len(read_mot(tmp_path / "results" / "synthetic-0.txt"))
    assert (tmp_path / "synthetic-0_ids.png").stat().st_size > 10_000
    import cv2

    video = cv2.VideoCapture(str(tmp_path / "synthetic-0_tracks.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 200
    assert str(tmp_path / "synthetic-0_tracks.mp4") in r.stdout


@pytest.mark.data
def test_demo_on_tud_campus(tmp_path):
    seq = require_shared("data", "TUD-Campus")
    r = subprocess.run([str(CLI), "demo", "--sequence", str(seq), "--detections", "det_frcnn.txt", "--out",
                        str(tmp_path), "--no-video"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["TUD-Campus"]["IDF1"] > 0.65


def test_demo_warns_when_scores_exceed_the_thresholds_range(tmp_path):
    seq = require_shared("data", "TUD-Campus", "det", "det.txt")  # MOT15 public ACF scores, up to ~120
    r = subprocess.run([str(CLI), "demo", "--sequence", str(seq.parent.parent), "--out", str(tmp_path),
                        "--no-video"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "det.txt: detection scores reach" in r.stderr and "high_score / low_score" in r.stderr


def test_demo_bad_sequence_exits_2(tmp_path):
    r = subprocess.run([str(CLI), "demo", "--sequence", str(tmp_path / "nope")], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "not a folder" in r.stderr and "Traceback" not in r.stderr
