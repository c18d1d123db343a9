"""`ros2-tracker track --tracker tracktor` and `track --cmc`: results, timing, bad input (exit 2)."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import CLI, REPO

from ros2_tracker.io.mot import read_mot

pytestmark = pytest.mark.data


def run_cli(*args):
    """The real command line, in a fresh process (loading torch there costs seconds: used once)."""
    return subprocess.run([str(CLI), "track", *map(str, args)], capture_output=True, text=True, timeout=180)


def run_main(capsys, *args):
    """``ros2-tracker track`` in this process (torch is loaded once for the whole test session)."""
    from ros2_tracker.cli.main import main

    code = main(["track", *map(str, args)])
    return code, capsys.readouterr().err


def test_tracktor_public_and_timing(tmp_path, d2go_path, d2go, tud, capsys):
    out, timing = tmp_path / "res.txt", tmp_path / "t.json"
    code, err = run_main(capsys, "--tracker", "tracktor", "--sequence", tud, "--detections",
                         tud / "det" / "det.txt", "--regressor-model", d2go_path, "--tracktor-config",
                         REPO / "config" / "tracktor.yaml", "--frames", 5, "--output", out,
                         "--timing", timing)
    assert code == 0, err
    res = read_mot(out)
    assert res.last_frame == 5 and len(set(res.ids.tolist())) >= 4
    t = json.loads(timing.read_text())
    assert t["frames"] == 5 and t["update_seconds"] >= t["encode_seconds"] + t["regress_seconds"] > 0
    assert t["cmc_seconds"] > 0 and t["regressor"].startswith("d2go:")


@pytest.mark.slow
def test_a_frame_beyond_max_detections_and_boxes_outside_the_image_are_warned_of(tmp_path, d2go_path, d2go,
                                                                                   tud, capsys):
    """Tracktor from the command line had no cap (its non-maximum suppression is N x N in memory) and
    passed a box of 1e8 px to the regressor, which crashed."""
    import numpy as np

    rng = np.random.default_rng(0)
    xys = zip(rng.uniform(0, 600, 2005), rng.uniform(0, 400, 2005), rng.uniform(0.5, 1, 2005), strict=True)
    rows = [f"1,-1,{x:.1f},{y:.1f},40,100,{s:.3f},-1,-1,-1" for x, y, s in xys]
    rows.append("1,-1,-1e8,-1e8,2e8,2e8,1.0,-1,-1,-1")
    det = tmp_path / "det.txt"
    det.write_text("\n".join(rows) + "\n")
    code, err = run_main(capsys, "--tracker", "tracktor", "--sequence", tud, "--detections", det,
                         "--regressor-model", d2go_path, "--frames", 1, "--output", tmp_path / "o.txt")
    assert code == 0, err
    assert "warning: 6 detections not tracked: frames with more than max_detections (2000)" in err


def test_tracktor_private_from_the_command_line(tmp_path, d2go_path, tud):
    out = tmp_path / "res.txt"
    r = run_cli("--tracker", "tracktor", "--sequence", tud, "--private", "--regressor-model", d2go_path,
                "--frames", 3, "--output", out)
    assert r.returncode == 0, r.stderr
    assert read_mot(out).last_frame == 3 and "tracked 3 frames" in r.stdout


def test_core_tracker_with_cmc(tmp_path, tud, capsys):
    out, timing = tmp_path / "res.txt", tmp_path / "t.json"
    code, err = run_main(capsys, "--detections", tud / "det" / "det.txt", "--sequence", tud, "--cmc",
                         "--frames", 10, "--output", out, "--timing", timing)
    assert code == 0, err
    assert len(read_mot(out)) > 10
    t = json.loads(timing.read_text())
    assert t["cmc_seconds"] > 0 and t["cmc_failures"] == 0 and t["cmc_frames_without_image"] == 0
    assert "camera-motion" not in err


def test_core_tracker_with_cmc_says_which_frames_had_no_image(tmp_path, capsys):
    from conftest import require_shared

    seq = require_shared("data", "MOT17-mini", "train", "MOT17-05-FRCNN")  # images of frames 1-6 only
    timing = tmp_path / "t.json"
    code, err = run_main(capsys, "--detections", seq / "det" / "det.txt", "--sequence", seq, "--cmc",
                         "--frames", 20, "--output", tmp_path / "res.txt", "--timing", timing)
    assert code == 0, err
    assert json.loads(timing.read_text())["cmc_frames_without_image"] == 14
    assert "warning: 14 of 20 frames have no image in --sequence: tracked without camera-motion" in err


@pytest.mark.parametrize("args,needle", [
    (["--tracker", "tracktor", "--private"], "needs --sequence"),
    (["--tracker", "tracktor", "--sequence", "{tud}"], "--detections det.txt (public) or --private"),
    (["--tracker", "tracktor", "--sequence", "{tud}", "--private", "--tracktor-config", "{bad}"],
     "sigma_active"),
    (["--tracker", "tracktor", "--sequence", "{tud}", "--private"], "regressor_model_path: must be set"),
    (["--tracker", "tracktor", "--sequence", "{tud}", "--private", "--regressor-model", "{junk}"],
     "not a TorchScript archive"),
    (["--tracker", "tracktor", "--sequence", "{tmp}/none", "--private", "--regressor-model", "{d2go}"],
     "--sequence"),
    (["--detections", "{tud}/det/det.txt", "--cmc"], "--cmc needs --sequence"),
    (["--detections", "{tud}/det/det.txt", "--private"], "need --tracker tracktor"),
    ([], "--detections is required"),
])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, tud, d2go_path, d2go, capsys, args, needle):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    sigma_active: 2.0\n")
    junk = tmp_path / "junk.pt"
    junk.write_text("junk")
    fill = {"tud": tud, "bad": bad, "junk": junk, "tmp": tmp_path, "d2go": d2go_path}
    code, err = run_main(capsys, *(a.format(**fill) for a in args), "--output", tmp_path / "res.txt")
    assert code == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1, err
