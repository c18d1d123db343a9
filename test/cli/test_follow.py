"""``ros2-tracker follow``: a real sequence end to end (CSV, video), and user errors as one line, exit 2."""

from __future__ import annotations

import csv
import subprocess

import numpy as np
import pytest
from conftest import CLI, require_shared

from ros2_tracker.cli.main import main
from ros2_tracker.sot.evaluation import ious


def test_follow_writes_a_csv_row_per_frame_and_an_annotated_video(tmp_path):
    seq = require_shared("data", "TUD-Campus")
    model = require_shared("models", "nanotrack_v2")
    g = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",")
    g = g[(g[:, 1] == 4) & (g[:, 0] >= 3) & (g[:, 0] <= 24)]  # person 4 from frame 3
    x, y, w, h = g[0, 2:6]
    out = tmp_path / "run"
    proc = subprocess.run([str(CLI), "follow", str(seq), "--box", f"{x},{y},{w},{h}", "--model", str(model),
                           "--start-frame", "3", "--frames", "22", "--output", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "followed target through 21 frames after the start frame" in proc.stdout
    rows = list(csv.DictReader((out / "follow.csv").open()))
    assert [int(r["frame"]) for r in rows] == list(range(3, 25))
    assert rows[0]["event"] == "start" and {r["state"] for r in rows} <= {"tracking", "uncertain", "lost"}
    boxes = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in rows[1:]])
    gt = np.c_[g[1:, 2:4], g[1:, 2:4] + g[1:, 4:6]]
    assert ious(boxes, gt).mean() > 0.5
    video = out / "follow.mp4" if (out / "follow.mp4").exists() else out / "follow.avi"
    import cv2

    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 22
    cap.release()


@pytest.mark.parametrize(("argv", "message"), [
    (["--box", "1,2,3"], "--box: expected x,y,w,h"),
    (["--box", "10,10,0,50"], "--box: width and height must be > 0"),
    (["--box", "900,10,40,50", "--model", "MODEL"], "--box: box [900, 10, 940, 60] is outside the 640x480"),
    (["--box", "10,10,40,50"], "--model: the nano backend needs the NanoTrack v2 folder"),
    (["--box", "10,10,40,50", "--model", "/nowhere"], "model_path: '/nowhere' is not a folder"),
    (["--box", "10,10,40,50", "--backend", "mil", "--detector-model", "x.onnx"], "--detector-model needs"),
])
def test_user_errors_are_one_line_with_exit_2(tmp_path, capsys, argv, message):
    seq = require_shared("data", "TUD-Campus")
    model = str(require_shared("models", "nanotrack_v2"))
    argv = [model if a == "MODEL" else a for a in argv]
    assert main(["follow", str(seq), "--output", str(tmp_path / "o"), "--no-video", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("ros2-tracker follow: error: ") and message in err
    assert not (tmp_path / "o").exists()  # a run that never started leaves no empty follow.csv behind


def test_a_missing_source_is_a_user_error(tmp_path, capsys):
    assert main(["follow", str(tmp_path / "nothing"), "--box", "1,2,3,4", "--backend", "mil"]) == 2
    assert "no such" in capsys.readouterr().err


def test_the_start_row_is_the_box_the_follower_took(tmp_path):
    seq = require_shared("data", "TUD-Campus")
    # a box partly left of the image: the follower starts on its clipped part, and so does row 1
    assert main(["follow", str(seq), "--box=-30,187,46,123", "--backend", "mil", "--frames", "2",
                 "--no-video", "--output", str(tmp_path / "o")]) == 0
    first = next(csv.DictReader((tmp_path / "o" / "follow.csv").open()))
    assert first["event"] == "start"
    assert [float(first[k]) for k in ("x1", "y1", "x2", "y2")] == [0, 187, 16, 310]


def test_an_unreadable_start_frame_is_an_error_not_a_later_start(tmp_path, capsys):
    import shutil

    seq = require_shared("data", "TUD-Campus")
    copy = tmp_path / "seq"  # without the start frame's image: --box cannot be moved to the next frame
    shutil.copytree(seq / "img1", copy / "img1", ignore=lambda _d, names: [n for n in names
                                                                           if n == "000001.jpg"])
    shutil.copy(seq / "seqinfo.ini", copy / "seqinfo.ini")
    assert main(["follow", str(copy), "--box", "9,187,46,123", "--backend", "mil", "--frames", "3",
                 "--no-video", "--output", str(tmp_path / "o2")]) == 2
    assert "the start frame cannot be read" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_a_run_that_never_started_keeps_an_output_folder_it_did_not_make(tmp_path, capsys):
    seq = require_shared("data", "TUD-Campus")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("kept")
    assert main(["follow", str(seq), "--box", "900,10,40,50", "--backend", "mil", "--output", str(out)]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_models_of_the_config_file_are_used_and_the_options_win(tmp_path):
    """A node parameter file reused with ``follow``: its reid_model_path / detector_model_path count."""
    import argparse

    from ros2_tracker.cli.follow import build_follower

    nano = require_shared("models", "nanotrack_v2")
    reid = require_shared("models", "osnet_x0_25_msmt17.onnx")
    yolox = require_shared("models", "yolox_nano.onnx")
    cfg = tmp_path / "sot.yaml"
    cfg.write_text(f"sot_node:\n  ros__parameters:\n    model_path: {nano}\n    reid_model_path: {reid}\n"
                   f"    detector_model_path: {yolox}\n")
    args = argparse.Namespace(config=cfg, backend=None, model=None, reid_model=None, detector_model=None)
    follower = build_follower(args)
    assert follower._embedder is not None and follower._detector is not None
    args.reid_model = tmp_path / "missing.onnx"  # the option wins over the file
    with pytest.raises(Exception, match=r"missing\.onnx"):
        build_follower(args)
