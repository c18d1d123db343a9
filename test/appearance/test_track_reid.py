"""``ros2-tracker track --sequence ... --reid-model ...`` and ``SequenceAppearance`` on real data."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from conftest import CLI, require_shared

pytest.importorskip("trackeval", reason="trackeval is not installed (pip-only: pip install trackeval)")

from ros2_tracker.appearance import EmbedderConfig, create_embedder
from ros2_tracker.core.tracker import Tracker
from ros2_tracker.eval.metrics import evaluate_sequence
from ros2_tracker.io.mot import read_mot
from ros2_tracker.io.video import open_frame_source
from ros2_tracker.offline import SequenceAppearance, track_mot_detections

pytestmark = pytest.mark.data


def run_cli(*args):
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def osnet_path():
    return require_shared("models", "osnet_x0_25_msmt17.onnx")


def test_reid_on_tud_campus_is_at_least_as_good_as_motion_only(tmp_path, osnet_path):
    seq = require_shared("data", "TUD-Campus")
    det = seq / "det" / "det_frcnn.txt"
    motion, app = tmp_path / "motion.txt", tmp_path / "app.txt"
    t_motion, t_app = tmp_path / "motion.json", tmp_path / "app.json"
    r = run_cli("track", "--detections", det, "--output", motion, "--timing", t_motion)
    assert r.returncode == 0, r.stderr
    r = run_cli("track", "--detections", det, "--output", app, "--timing", t_app, "--sequence", seq,
                "--reid-model", osnet_path)
    assert r.returncode == 0, r.stderr
    assert "without appearance" not in r.stderr
    # without --reid-model the timing contract is unchanged
    assert set(json.loads(t_motion.read_text())) == {"update_seconds", "frames"}
    t = json.loads(t_app.read_text())
    assert t["frames"] == 71 and t["embedded_frames"] == 71 and t["frames_without_appearance"] == 0
    assert t["embed_seconds"] > 0 and 0 < t["update_seconds"] < t["embed_seconds"]
    m_motion = evaluate_sequence(seq / "gt" / "gt.txt", motion)
    m_app = evaluate_sequence(seq / "gt" / "gt.txt", app)
    # identities and their overlap, not the count of switches: on these 71 frames it is 2-4 events either
    # way and moves with any change of the motion model (bench/reid.py reports it per sequence)
    assert m_app.IDF1 >= m_motion.IDF1 and m_app.HOTA >= m_motion.HOTA
    assert read_mot(app).frames.max() <= 71


@pytest.mark.parametrize("args,needle", [
    (["--reid-model", "MODEL"], "--sequence and --reid-model go together"),
    (["--sequence", "SEQ"], "--sequence and --reid-model go together"),
    (["--reid-threads", "2"], "need --reid-model"),
    (["--sequence", "SEQ", "--reid-model", "BAD"], "not a loadable ONNX model"),
    (["--sequence", "SEQ", "--reid-model", "MISSING"], "file not found"),
    (["--sequence", "NOSEQ", "--reid-model", "MODEL"], "--sequence"),
    (["--sequence", "SEQ", "--reid-model", "MODEL", "--reid-config", "DIM"], "embedding_dim"),
])
def test_bad_reid_options_give_one_line_and_exit_2(tmp_path, osnet_path, args, needle):
    seq = require_shared("data", "TUD-Campus")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage" * 50)
    dim = tmp_path / "dim.yaml"
    dim.write_text("/**:\n  ros__parameters:\n    embedding_dim: 128\n")
    subst = {"MODEL": osnet_path, "SEQ": seq, "BAD": bad, "MISSING": tmp_path / "none.onnx",
             "NOSEQ": tmp_path / "no_such_folder", "DIM": dim}
    r = run_cli("track", "--detections", seq / "det" / "det_frcnn.txt", "--output", tmp_path / "o.txt",
                *[subst.get(a, a) for a in args])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr


def test_frames_without_images_or_crops_are_tracked_by_motion(tmp_path, osnet_path):
    """Missing images and boxes outside the image leave those frames to motion, without crashing."""
    src = require_shared("data", "TUD-Campus")
    seq = tmp_path / "SEQ"
    (seq / "img1").mkdir(parents=True)
    shutil.copy(src / "seqinfo.ini", seq / "seqinfo.ini")
    for f in (1, 2, 3, 5):  # frame 4 and frames 6.. have no image
        shutil.copy(src / "img1" / f"{f:06d}.jpg", seq / "img1" / f"{f:06d}.jpg")
    dets = read_mot(src / "det" / "det_frcnn.txt")
    keep = dets.frames <= 8
    dets = type(dets)(dets.frames[keep], dets.ids[keep], dets.boxes_tlwh[keep], dets.scores[keep],
                      dets.extra[keep])
    out_of_image = dets.frames == 3
    dets.boxes_tlwh[np.flatnonzero(out_of_image)[0], :2] = (2000.0, 2000.0)  # one box far outside
    embedder = create_embedder(EmbedderConfig(model_path=str(osnet_path)))
    app = SequenceAppearance(open_frame_source(seq), embedder)
    res = track_mot_detections(dets, Tracker(), 25.0, last_frame=8, features=app)
    assert res.n_frames == 8 and len(res.ids) > 0
    assert app.embedded_frames == 3  # frames 1, 2, 5
    assert app.frames_without_appearance == 5  # 3 (a box outside the image), 4, 6, 7, 8 (no image)
    assert app.invalid_boxes == 1
    assert any("frame 3" in p and "usable crop" in p for p in app.problems)
    assert any("frame 4" in p for p in app.problems)
    assert app.embed_seconds > 0
