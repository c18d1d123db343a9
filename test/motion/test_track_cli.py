"""``ros2-tracker track`` with ``motion_model: learned`` on real detections (TUD-Campus)."""

from __future__ import annotations

import pytest
from conftest import require_shared

pytest.importorskip("onnxruntime")

pytest.importorskip("trackeval", reason="trackeval is not installed (pip-only: pip install trackeval)")

from ros2_tracker.cli.main import main
from ros2_tracker.eval.metrics import evaluate_sequence
from ros2_tracker.io.mot import read_mot


def _config(path, model):
    path.write_text(f"/**:\n  ros__parameters:\n    motion_model: learned\n    motion_model_path: {model}\n")
    return path


def test_track_runs_end_to_end_with_the_learned_model(tmp_path, untrained_onnx):
    seq = require_shared("data", "TUD-Campus")
    det, gt = seq / "det" / "det_frcnn.txt", seq / "gt" / "gt.txt"
    cv_out, learned_out = tmp_path / "cv.txt", tmp_path / "learned.txt"
    assert main(["track", "--detections", str(det), "--output", str(cv_out)]) == 0
    cfg = _config(tmp_path / "tracker.yaml", untrained_onnx)
    assert main(["track", "--detections", str(det), "--output", str(learned_out), "--config", str(cfg)]) == 0
    assert len(read_mot(learned_out)) > 200
    cv, learned = evaluate_sequence(gt, cv_out), evaluate_sequence(gt, learned_out)
    assert learned.HOTA > cv.HOTA - 0.05 and learned.IDF1 > cv.IDF1 - 0.05, (learned, cv)


def test_track_with_a_missing_model_is_a_one_line_error(tmp_path, capsys):
    seq = require_shared("data", "TUD-Campus")
    cfg = _config(tmp_path / "tracker.yaml", tmp_path / "missing.onnx")
    code = main(["track", "--detections", str(seq / "det" / "det.txt"), "--output", str(tmp_path / "r.txt"),
                 "--config", str(cfg)])
    assert code == 2
    err = capsys.readouterr().err
    assert "motion_model_path:" in err and "file not found" in err
