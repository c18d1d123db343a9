"""bench/offline.py end to end on one small sequence (ours only): the section and raw numbers it writes."""

import json
import subprocess
import sys

import pytest
from conftest import REPO, require_shared


@pytest.mark.data
def test_offline_bench_writes_the_section(tmp_path):
    require_shared("data", "TUD-Campus")
    section = tmp_path / "offline.md"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "offline.py"), "--datasets", "tud-campus-frcnn",
                        "mot15", "--trackers", "--no-reid", "--out", str(tmp_path / "out"), "--section",
                        str(section)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    text = section.read_text()
    assert "TUD-Campus, Faster R-CNN detections" in text and "| **ros2_tracker** |" in text
    assert "mot15: skipped, speed only" in r.stderr and "#### MOT15 train" not in text  # nothing to score
    assert "Command: `.venv/bin/python bench/offline.py --datasets tud-campus-frcnn mot15" in text
    raw = json.loads((tmp_path / "out" / "results.json").read_text())["tud-campus-frcnn"][0]
    assert raw["error"] is None and raw["interpolated"] > 0
    assert raw["metrics"]["offline"]["HOTA"] >= raw["metrics"]["online"]["HOTA"]
    folder = tmp_path / "out" / "tud-campus-frcnn" / "ros2_tracker"
    assert (folder / "TUD-Campus.offline.txt.offline.json").exists() and (folder / "TUD-Campus.txt").exists()
