"""`ros2-tracker track --offline`: refined MOT results + offline marker, the online results untouched."""

import json
import subprocess

import numpy as np
import pytest
from conftest import CLI, require_shared

from ros2_tracker.io.mot import read_mot


def run_cli(*args):
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.mark.data
def test_offline_writes_refined_results_and_marker_and_keeps_online(tmp_path):
    root = require_shared("data", "TUD-Campus")
    det = root / "det" / "det_frcnn.txt"
    plain = tmp_path / "plain.txt"
    assert run_cli("track", "--detections", det, "--output", plain).returncode == 0
    out = tmp_path / "res.txt"
    r = run_cli("track", "--detections", det, "--output", out, "--offline")
    assert r.returncode == 0, r.stderr
    online = tmp_path / "res.online.txt"
    # the online results are exactly what plain `track` writes
    assert online.read_bytes() == plain.read_bytes()
    refined, on = read_mot(out), read_mot(online)  # both valid MOTChallenge files
    assert refined.extra.shape[1] == 3 and np.all(refined.extra == -1)
    assert len(refined) > len(on)  # interpolated boxes were added
    marker = json.loads((tmp_path / "res.txt.offline.json").read_text())
    assert marker["offline"] is True and marker["online_results"] == str(online)
    assert marker["summary"]["interpolated_rows"] == len(refined) - len(on)
    assert marker["appearance"] is False and marker["links"] == []  # no appearance: no links by default
    assert "not linked" in r.stderr


@pytest.mark.data
def test_offline_with_appearance_links_and_refine_config(tmp_path):
    root = require_shared("data", "TUD-Campus")
    model = require_shared("models", "osnet_x0_25_msmt17.onnx")
    cfg = tmp_path / "refine.yaml"
    cfg.write_text("/**:\n  ros__parameters:\n    interpolate: false\n")
    out = tmp_path / "res.txt"
    r = run_cli("track", "--detections", root / "det" / "det_frcnn.txt", "--output", out, "--offline",
                "--sequence", root, "--reid-model", model, "--refine-config", cfg)
    assert r.returncode == 0, r.stderr
    marker = json.loads((tmp_path / "res.txt.offline.json").read_text())
    assert marker["appearance"] is True and marker["refine_config"]["interpolate"] is False
    refined, online = read_mot(out), read_mot(tmp_path / "res.online.txt")
    assert len(refined) == len(online)  # no interpolation: the same rows, possibly relabelled
    linked = {(k["earlier_id"], k["later_id"]) for k in marker["links"]}
    for earlier, later in linked:
        assert later not in set(refined.ids.tolist()) and earlier in set(refined.ids.tolist())
    # the count printed is that of the file written (it was the online count)
    assert linked and f"{len(set(refined.ids.tolist()))} tracks -> {out}" in r.stdout, r.stdout


@pytest.mark.parametrize("args,needle", [
    (["--refine-config", "x.yaml"], "--refine-config needs --offline"),
    (["--offline", "--refine-config", "missing.yaml"], "not found"),
])
def test_offline_bad_options_exit_2(tmp_path, args, needle):
    det = tmp_path / "det.txt"
    det.write_text("".join(f"{f},-1,{100 + 3 * f},100,40,100,0.9\n" for f in range(1, 11)))
    r = run_cli("track", "--detections", det, "--output", tmp_path / "res.txt", "--fps", 10, *args)
    assert r.returncode == 2 and needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "res.txt").exists()


def test_offline_bad_refine_parameter_exit_2(tmp_path):
    det = tmp_path / "det.txt"
    det.write_text("".join(f"{f},-1,{100 + 3 * f},100,40,100,0.9\n" for f in range(1, 11)))
    cfg = tmp_path / "refine.yaml"
    cfg.write_text("/**:\n  ros__parameters:\n    max_gap_s: -2.0\n")
    r = run_cli("track", "--detections", det, "--output", tmp_path / "res.txt", "--fps", 10, "--offline",
                "--refine-config", cfg)
    assert r.returncode == 2 and "max_gap_s" in r.stderr
