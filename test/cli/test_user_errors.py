"""Bad command lines across the subcommands: one line on stderr and exit status 2, before anything runs and
without touching the user's files (an output that is an input, a full disk, contradicting options, values the
nodes would refuse only once started). The CLI runs in-process (``cli.main.main``): these checks come before
any node or model starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import SHARED, require_modules, require_shared

from ros2_tracker.cli.main import main

DET = "".join(f"{f},-1,{100 + 4 * f},100,40,100,0.9,-1,-1,-1\n" for f in range(1, 11))


@pytest.fixture
def det(tmp_path) -> Path:
    p = tmp_path / "det.txt"
    p.write_text(DET)
    return p


def fails(capsys, *argv, needs: str) -> str:
    """Run the CLI; assert exit 2 with one error line containing ``needs``; return that line."""
    code = main([str(a) for a in argv])
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert code == 2 and len(err) == 1 and needs in err[0], (code, err)
    return err[0]


def test_track_refuses_an_output_that_is_an_input_or_another_output(tmp_path, det, capsys):
    fails(capsys, "track", "--detections", det, "--output", tmp_path / "r.txt", "--timing", det,
          needs=f"--timing {det}: the same file as --detections")
    assert det.read_text() == DET  # untouched
    same = tmp_path / "same.txt"
    fails(capsys, "track", "--detections", det, "--output", same, "--timing", same,
          needs="the same file as --output")
    assert not same.exists()
    cfg = tmp_path / "tracker.yaml"
    cfg.write_text("/**:\n  ros__parameters:\n    min_hits: 2\n")
    fails(capsys, "track", "--detections", det, "--output", cfg, "--config", cfg, needs="--config")
    assert "min_hits" in cfg.read_text()
    link = tmp_path / "link.txt"  # another name of the same file
    os.link(det, link)
    fails(capsys, "track", "--detections", link, "--output", det, needs="the same file as --detections")


def test_an_output_that_cannot_be_created_is_refused_before_tracking(tmp_path, det, capsys):
    fails(capsys, "track", "--detections", det, "--output", tmp_path, needs="a folder; give a file name")
    fails(capsys, "track", "--detections", det, "--output", det / "r.txt",
          needs=f"{det} is a file, not a folder")
    fails(capsys, "evaluate", "--gt", det, "--results", det.with_name("r.txt"),
          "--json", det / "m" / "m.json", needs="is a file, not a folder")
    assert main(["track", "--detections", str(det), "--output", str(tmp_path / "new" / "dir" / "r.txt")]) == 0


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux) to simulate a full disk")
def test_a_full_disk_is_one_line_and_exit_2_naming_the_output(tmp_path, det, capsys):
    full = "No space left on device: '/dev/full'"  # write() errors carry no file name of their own
    fails(capsys, "track", "--detections", det, "--output", "/dev/full", needs=full)
    res = tmp_path / "r.txt"
    fails(capsys, "track", "--detections", det, "--output", res, "--timing", "/dev/full", needs=full)
    require_modules("trackeval")
    gt = tmp_path / "gt.txt"
    gt.write_text("".join(f"{f},1,{100 + 4 * f},100,40,100,1,-1,-1,-1\n" for f in range(1, 11)))
    for option in ("--csv", "--json"):
        fails(capsys, "evaluate", "--gt", gt, "--results", res, option, "/dev/full", needs=full)


@pytest.mark.parametrize(("path", "needs"), [("folder", "a folder, not a file"),
                                             ("/dev/null", "not a file"), ("missing.txt", "file not found")])
def test_detections_that_are_not_a_file_say_what_they_are(tmp_path, capsys, path, needs):
    (tmp_path / "folder").mkdir()
    target = path if path.startswith("/") else tmp_path / path
    fails(capsys, "track", "--detections", target, "--output", tmp_path / "r.txt", needs=needs)


def test_evaluate_refuses_overwriting_and_names_out_of_place(tmp_path, det, capsys):
    gt = tmp_path / "gt.txt"
    gt.write_text(DET.replace(",-1,", ",1,").replace(",0.9,", ",1,"))
    res = tmp_path / "res.txt"
    res.write_text(DET.replace(",-1,", ",7,"))
    fails(capsys, "evaluate", "--gt", gt, "--results", res, "--csv", res, needs="the same file as --results")
    assert res.read_text() == DET.replace(",-1,", ",7,")
    m = tmp_path / "m"
    fails(capsys, "evaluate", "--gt", gt, "--results", res, "--csv", m, "--json", m,
          needs="the same file as --csv")
    pair = f"a={gt}:{res}"
    fails(capsys, "evaluate", "--pairs", pair, "--json", gt, needs="the same file as a's ground truth")
    fails(capsys, "evaluate", "--gt", gt, "--results", res, "--name", "COMBINED", needs="--name: COMBINED")
    fails(capsys, "evaluate", "--pairs", pair, "--name", "x", needs="--name applies to --gt/--results")
    frac = tmp_path / "frac.txt"
    frac.write_text("1,1.5,10,10,50,100,1,-1,-1,-1\n")
    fails(capsys, "evaluate", "--gt", gt, "--results", frac, needs="frac.txt:1: id must be an integer")


def test_launch_checks_its_file_timeouts_and_parameter_files(tmp_path, capsys):
    png = tmp_path / "fake.launch.py"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    fails(capsys, "launch", png, "--dry-run", needs="not a launch file")
    for option, value in (("--sigint-timeout", "nan"), ("--sigterm-timeout", "inf"),
                          ("--sigint-timeout", "-1")):
        fails(capsys, "launch", "tracker", option, value, "--dry-run",
              needs=f"{option} must be a finite number")
    fails(capsys, "launch", "tracker", f"params_file:={tmp_path / 'nope.yaml'}", "--dry-run",
          needs="parameter file not found")
    assert main(["launch", "tracker", "--dry-run"]) == 0


def test_replay_checks_rate_and_detector_options_before_any_node_starts(tmp_path, det, capsys):
    pytest.importorskip("rclpy", reason="replay needs rclpy")
    seq = tmp_path / "seq"
    (seq / "det").mkdir(parents=True)
    (seq / "det" / "det.txt").write_text(DET)
    out = tmp_path / "run"
    for rate, needs in (("nan", "--rate: NaN is not allowed"), ("1e6", "--rate: 1000000.0 is out of range")):
        fails(capsys, "replay", seq, "--rate", rate, "--out", out, needs=needs)
    fails(capsys, "replay", seq, "--model", det, "--out", out, needs="--model is the detector's")
    fails(capsys, "replay", seq, "--detector", "--detections", det, "--out", out, needs="give one")
    require_modules("onnxruntime")
    fails(capsys, "replay", seq, "--detector", "--model", det, "--out", out,
          needs="not a loadable ONNX model")
    assert not out.exists()  # nothing ran, no run folder


def test_demo_refuses_options_that_would_score_the_wrong_thing(tmp_path, det, capsys):
    fails(capsys, "demo", "--detections", det, "--out", tmp_path / "d", needs="--detections needs --sequence")
    seq = SHARED / "data" / "TUD-Campus"
    fails(capsys, "demo", "--sequence", seq, "--seed", "5", "--out", tmp_path / "d",
          needs="--seed is the synthetic scene's")


def test_ground_truth_is_checked_before_the_run_that_it_would_score(tmp_path, det, capsys):
    """A malformed ground truth (given, or the sequence's gt/gt.txt) used to fail the scoring after a whole
    replay or demo run; now nothing runs and no results are written."""
    seq = tmp_path / "seq"
    (seq / "det").mkdir(parents=True)
    (seq / "det" / "det.txt").write_text(DET)
    (seq / "gt").mkdir()
    (seq / "gt" / "gt.txt").write_text("1,1,10,10,20,40,1,-1,-1,-1\n1,1,30,10,20,40,1,-1,-1,-1\n")
    fails(capsys, "demo", "--sequence", seq, "--no-video", "--out", tmp_path / "d",
          needs="id 1 appears more than once in frame 1")
    assert not (tmp_path / "d" / "results").exists()
    pytest.importorskip("rclpy", reason="replay needs rclpy")
    out = tmp_path / "run"
    fails(capsys, "replay", seq, "--no-video", "--out", out, needs="id 1 appears more than once in frame 1")
    bad = tmp_path / "gt.txt"
    bad.write_text("frame,id,x,y,w,h\n")
    fails(capsys, "replay", seq, "--gt", bad, "--no-video", "--out", out,
          needs="gt.txt:1: not a row of numbers")
    assert not out.exists()  # nothing ran, no run folder


def test_train_sot_refuses_contradicting_and_foreign_options(tmp_path, capsys):
    require_modules("torch", "torchvision")
    fails(capsys, "train-sot", "--model", "goturn", "--cycle-weight", "0.5", "--no-cycle",
          "--data-root", tmp_path, needs="contradict")
    fails(capsys, "train-sot", "--model", "rolo", "--cycle-weight", "0.5", "--data-root", tmp_path,
          needs="GOTURN's option")


def test_build_engine_names_a_calibration_folder_that_is_not_there(tmp_path, det, capsys):
    require_modules("onnx")
    model = require_shared("models", "osnet_x0_25_msmt17.onnx")  # its inputs are read first
    fails(capsys, "build-engine", model, "--int8", needs="--int8 needs --calib-frames DIR")
    fails(capsys, "build-engine", model, "--int8", "--calib-frames", tmp_path / "nope",
          needs="no such folder")
    fails(capsys, "build-engine", model, "--int8", "--calib-frames", det, needs="not a folder")
