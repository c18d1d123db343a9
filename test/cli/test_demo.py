"""`ros2-tracker demo`: synthetic scene and a real sequence end to end (results, metrics, video, plot)."""

import json
import os
import subprocess

import pytest
from conftest import CLI, require_shared

from ros2_tracker.io.mot import read_mot


def test_demo_on_synthetic_scene(tmp_path):
    pytest.importorskip("trackeval", reason="trackeval is not installed (pip install trackeval)")
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
    pytest.importorskip("trackeval", reason="trackeval is not installed (pip install trackeval)")
    r = subprocess.run([str(CLI), "demo", "--sequence", str(seq), "--detections", "det_frcnn.txt", "--out",
                        str(tmp_path), "--no-video"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["TUD-Campus"]["IDF1"] > 0.65


def test_demo_takes_a_path_to_the_detections_as_track_and_replay_do(tmp_path, capsys, monkeypatch):
    """`--detections ../shared/data/TUD-Campus/det/det_frcnn.txt` (replay's example) was looked for under det/
    (".../det/../shared/data/TUD-Campus/det/det_frcnn.txt: file not found"), and so was `./mine.txt`;
    a bare name still is."""
    import shutil

    from ros2_tracker.cli.main import main

    seq = require_shared("data", "TUD-Campus")
    here = tmp_path / "here"
    here.mkdir()
    shutil.copy(seq / "det" / "det_frcnn.txt", here / "mine.txt")
    monkeypatch.chdir(here)
    relative = os.path.relpath(seq / "det" / "det_frcnn.txt")  # absolute paths worked: det/ / "/x" is "/x"
    for k, det in enumerate((relative, "det_frcnn.txt", "./mine.txt")):
        assert main(["demo", "--sequence", str(seq), "--detections", det, "--out", str(tmp_path / str(k)),
                     "--no-video"]) == 0
    first, second, third = (json.loads((tmp_path / k / "metrics.json").read_text()) for k in ("0", "1", "2"))
    assert first == second == third and first["TUD-Campus"]["IDF1"] > 0.65


def test_demo_without_trackeval_tracks_draws_and_says_the_metrics_are_skipped(tmp_path):
    """trackeval is pip-only (a robot's rosdep brings none): demo died with a ModuleNotFoundError traceback
    after the whole run, its video not written."""
    import sys

    code = ("import sys; sys.modules['trackeval'] = None  # as where trackeval is not installed\n"
            "from ros2_tracker.cli.main import main\n"
            "sys.exit(main(['demo', '--out', sys.argv[1], '--no-video']))\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "trackeval is not installed (pip install trackeval): metrics skipped" in r.stderr
    assert len(read_mot(tmp_path / "results" / "synthetic-0.txt"))
    assert not (tmp_path / "metrics.json").exists()


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


def _tud_copy(tmp_path, seqinfo: str | None):
    """TUD-Campus's Faster R-CNN detections and ground truth in a folder of their own."""
    import shutil

    seq = require_shared("data", "TUD-Campus")
    root = tmp_path / "seq"
    (root / "det").mkdir(parents=True)
    (root / "gt").mkdir()
    shutil.copy(seq / "det" / "det_frcnn.txt", root / "det" / "det.txt")
    shutil.copy(seq / "gt" / "gt.txt", root / "gt" / "gt.txt")
    if seqinfo is not None:
        (root / "seqinfo.ini").write_text(seqinfo)
    return root


def test_demo_without_a_frame_rate_says_so_and_takes_fps(tmp_path, capsys):
    from ros2_tracker.cli.main import main

    root = _tud_copy(tmp_path, None)
    assert main(["demo", "--sequence", str(root), "--out", str(tmp_path / "a"), "--no-video"]) == 0
    assert "no frame rate given (--fps) or found in seqinfo.ini; assuming 30 Hz" in capsys.readouterr().err
    assert main(["demo", "--sequence", str(root), "--out", str(tmp_path / "b"), "--no-video",
                 "--fps", "25"]) == 0
    assert "assuming" not in capsys.readouterr().err
    at25 = json.loads((tmp_path / "b" / "metrics.json").read_text())["seq"]
    at30 = json.loads((tmp_path / "a" / "metrics.json").read_text())["seq"]
    assert at25["IDF1"] > 0.74 and at25 != at30  # TUD-Campus is 25 Hz: 76.1 there
    assert main(["demo", "--fps", "25", "--out", str(tmp_path / "c")]) == 2
    assert "--fps needs --sequence" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "outcome"), [("../../escaped", "is a path"), ("", "seq.txt")])
def test_a_seqinfo_name_never_leads_outside_the_output_folder(tmp_path, capsys, name, outcome):
    from ros2_tracker.cli.main import main

    root = _tud_copy(tmp_path, f"[Sequence]\nname={name}\nframeRate=25\nseqLength=71\n")
    code = main(["demo", "--sequence", str(root), "--out", str(tmp_path / "o"), "--no-video"])
    if outcome == "is a path":
        assert code == 2 and "name '../../escaped' is a path" in capsys.readouterr().err
        assert not list(tmp_path.rglob("escaped*"))
    else:
        assert code == 0 and (tmp_path / "o" / "results" / outcome).is_file()  # the folder's name


def test_demo_notes_result_rows_beyond_the_ground_truth(tmp_path, capsys):
    from ros2_tracker.cli.main import main

    seq = require_shared("data", "MOT17-mini", "train", "MOT17-05-FRCNN")
    assert main(["demo", "--sequence", str(seq), "--out", str(tmp_path), "--no-video"]) == 0
    assert "result rows after frame 6, the last with ground truth, are not scored" in capsys.readouterr().err


def test_a_video_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, capsys):
    from ros2_tracker.cli.main import main

    root = _tud_copy(tmp_path, None)
    out = tmp_path / "o"
    for suffix in (".mp4", ".avi"):  # folders where the video files would go: no writer opens
        (out / f"seq_tracks{suffix}").mkdir(parents=True)
    assert main(["demo", "--sequence", str(root), "--out", str(out), "--fps", "25"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("ros2-tracker demo: error: OpenCV could not open a video writer")
