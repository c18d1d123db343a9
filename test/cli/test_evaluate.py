"""``ros2-tracker evaluate`` as users run it: a subprocess of the installed console script."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CLI, require_shared

pytest.importorskip("trackeval", reason="trackeval is not installed (pip-only: pip install trackeval)")

from ros2_tracker.eval.metrics import COMBINED, evaluate_many, evaluate_sequence


def run_cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), "evaluate", *map(str, args)], capture_output=True, text=True, timeout=60)


def keep_rows(src: Path, dst: Path, keep) -> Path:
    lines = [ln for ln in src.read_text().splitlines() if ln.strip() and keep(ln.split(","))]
    dst.write_text("".join(ln + "\n" for ln in lines))
    return dst


def synthetic_gt(path: Path, n_frames: int = 12) -> Path:
    path.write_text("".join(f"{f},{k},{10 + 120 * k + f},40,40,90,1,-1,-1,-1\n"
                            for f in range(1, n_frames + 1) for k in (1, 2, 3)))
    return path


def test_single_sequence_table_csv_json_match_the_library(tmp_path):
    gt = require_shared("data", "TUD-Stadtmitte", "gt", "gt.txt")
    res = keep_rows(gt, tmp_path / "res.txt", lambda r: int(r[0]) % 3 != 0 or r[1] != "2")  # some misses
    out = run_cli("--gt", gt, "--results", res, "--csv", tmp_path / "m.csv", "--json", tmp_path / "m.json")
    assert out.returncode == 0, out.stderr
    expected = evaluate_sequence(gt, res)
    header, row = out.stdout.splitlines()
    assert header.split() == ["sequence", "HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN"]
    assert row.split()[0] == "TUD-Stadtmitte"  # named after the sequence folder
    assert row.split()[4] == f"{100 * expected.MOTA:.1f}" and row.split()[-1] == str(expected.FN)
    assert expected.FN > 0
    assert json.loads((tmp_path / "m.json").read_text()) == {"TUD-Stadtmitte": expected.as_dict()}
    with (tmp_path / "m.csv").open() as fh:
        (line,) = list(csv.DictReader(fh))
    assert float(line["HOTA"]) == pytest.approx(expected.HOTA) and int(line["FN"]) == expected.FN


def test_frames_and_name_options(tmp_path):
    gt = synthetic_gt(tmp_path / "gt.txt", n_frames=12)
    res = keep_rows(gt, tmp_path / "res.txt", lambda r: int(r[0]) <= 6)
    out = run_cli("--gt", gt, "--results", res, "--frames", 6, "--name", "first-half",
                  "--json", tmp_path / "m.json")
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "m.json").read_text())["first-half"]
    assert data["num_frames"] == 6 and data["MOTA"] == 1.0
    # ground truth after the frames scored is left out, and said (TrackEval would refuse it)
    assert data["unscored_gt_rows"] == 18 and "18 ground-truth rows after frame 6" in out.stderr
    out = run_cli("--gt", gt, "--results", res, "--json", tmp_path / "all.json")
    assert json.loads((tmp_path / "all.json").read_text())["gt"]["FN"] == 18
    # results after the last annotated frame are not scored by default, and the note says so
    short_gt = keep_rows(gt, tmp_path / "short_gt.txt", lambda r: int(r[0]) <= 6)
    out = run_cli("--gt", short_gt, "--results", gt, "--json", tmp_path / "short.json")
    assert out.returncode == 0
    assert "short_gt: 18 result rows after frame 6, the last frame scored, are not counted" in out.stderr
    assert "ground-truth rows" not in out.stderr
    short = json.loads((tmp_path / "short.json").read_text())["short_gt"]
    assert short["FP"] == 0 and short["unscored_rows"] == 18
    out = run_cli("--gt", short_gt, "--results", gt, "--frames", 12, "--json", tmp_path / "all12.json")
    assert "not counted" not in out.stderr
    assert json.loads((tmp_path / "all12.json").read_text())["short_gt"]["FP"] == 18
    assert json.loads((tmp_path / "all12.json").read_text())["short_gt"]["unscored_rows"] == 0


def test_pairs_and_results_dir_give_a_combined_row(tmp_path):
    data = require_shared("data")
    res_dir = tmp_path / "results"
    res_dir.mkdir()
    seqs = ["TUD-Campus", "PETS09-S3MF1"]
    for seq in seqs:  # every second frame of the ground truth as "results"
        keep_rows(data / seq / "gt" / "gt.txt", res_dir / f"{seq}.txt", lambda r: int(r[0]) % 2 == 0)
    expected = dict(evaluate_many([(s, data / s / "gt" / "gt.txt", res_dir / f"{s}.txt") for s in seqs]))

    pairs = [f"{s}={data / s / 'gt' / 'gt.txt'}:{res_dir / f'{s}.txt'}" for s in seqs]
    by_pairs = run_cli("--pairs", *pairs, "--json", tmp_path / "p.json")
    by_dir = run_cli("--results-dir", res_dir, "--gt-root", data, "--json", tmp_path / "d.json")
    for out, path, order in ((by_pairs, "p.json", seqs), (by_dir, "d.json", sorted(seqs))):
        assert out.returncode == 0, out.stderr
        assert [ln.split()[0] for ln in out.stdout.splitlines()[1:]] == [*order, COMBINED]
        got = json.loads((tmp_path / path).read_text())
        assert got[COMBINED] == expected[COMBINED].as_dict()
        assert got["TUD-Campus"] == expected["TUD-Campus"].as_dict()
    assert "warning" not in by_pairs.stderr
    # ../shared/data holds TUD-Stadtmitte's ground truth too, without results here: said, not scored
    assert "have no results file" in by_dir.stderr and "TUD-Stadtmitte" in by_dir.stderr


def test_results_dir_names_what_it_leaves_out(tmp_path):
    """A crashed or misnamed run must not leave the combined score better without a word: results without
    ground truth and sequences with ground truth but no results are named (TrackEval refuses the latter)."""
    data = tmp_path / "data"
    for seq in ("SEQ-A", "SEQ-B"):
        synthetic_gt((data / seq / "gt").mkdir(parents=True) or data / seq / "gt" / "gt.txt")
    res_dir = tmp_path / "results"
    res_dir.mkdir()
    keep_rows(data / "SEQ-A" / "gt" / "gt.txt", res_dir / "SEQ-A.txt", lambda r: True)
    keep_rows(data / "SEQ-A" / "gt" / "gt.txt", res_dir / "seq-b.txt", lambda r: True)  # misnamed
    out = run_cli("--results-dir", res_dir, "--gt-root", data)
    assert out.returncode == 0, out.stderr
    assert [ln.split()[0] for ln in out.stdout.splitlines()[1:]] == ["SEQ-A", COMBINED]
    assert "not scored, no" in out.stderr and "seq-b.txt" in out.stderr
    assert "1 of 2 sequences with ground truth have no results file" in out.stderr and "SEQ-B" in out.stderr


def test_result_rows_of_another_class_are_counted_and_said(tmp_path):
    """TrackEval reads column 8 of results as the class and refuses anything but pedestrians; here they are
    scored as pedestrians, counted, and the user told."""
    gt = synthetic_gt(tmp_path / "gt.txt")
    res = tmp_path / "res.txt"
    res.write_text(gt.read_text().replace(",1,-1,-1,-1", ",1,3,-1,-1", 5))  # five rows of class 3
    out = run_cli("--gt", gt, "--results", res, "--json", tmp_path / "m.json")
    assert out.returncode == 0, out.stderr
    got = json.loads((tmp_path / "m.json").read_text())["gt"]
    assert got["non_pedestrian_rows"] == 5 and got["MOTA"] == 1.0
    assert "5 result rows have a value above 1 in column 8" in out.stderr


def test_results_dir_scores_each_sequence_up_to_its_seqinfo_length(tmp_path):
    """As TrackEval does: boxes after the last annotated person, within seqLength, are false positives."""
    seq = require_shared("data", "TUD-Campus")
    root = tmp_path / "gt_root" / "TUD-Campus"
    (root / "gt").mkdir(parents=True)
    shutil.copy(seq / "seqinfo.ini", root / "seqinfo.ini")  # seqLength 71
    keep_rows(seq / "gt" / "gt.txt", root / "gt" / "gt.txt", lambda r: int(r[0]) <= 60)
    (tmp_path / "res").mkdir()
    res = keep_rows(seq / "gt" / "gt.txt", tmp_path / "res" / "TUD-Campus.txt", lambda r: True)
    after = sum(1 for ln in res.read_text().splitlines() if int(ln.split(",")[0]) > 60)
    out = run_cli("--results-dir", tmp_path / "res", "--gt-root", tmp_path / "gt_root",
                  "--json", tmp_path / "d.json")
    assert out.returncode == 0, out.stderr
    got = json.loads((tmp_path / "d.json").read_text())["TUD-Campus"]
    assert (got["FP"], got["FN"], got["num_frames"], got["unscored_rows"]) == (after, 0, 71, 0) and after > 0


@pytest.mark.parametrize("case", ["missing results", "missing gt", "malformed gt", "detections as results",
                                  "duplicate id", "no results option", "bad pair", "frames 0", "frames 1e8",
                                  "frames 300k", "duplicate names", "two modes", "empty results dir"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, case):
    gt = synthetic_gt(tmp_path / "gt.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("1,1,10,20\n")
    dets = keep_rows(gt, tmp_path / "det.txt", lambda r: True)
    dets.write_text(dets.read_text().replace(",1,", ",-1,", 1))
    dup = tmp_path / "dup.txt"
    dup.write_text(gt.read_text().splitlines()[0] + "\n" + gt.read_text())  # sorted: no "unsorted" note
    (tmp_path / "empty").mkdir()
    args = {
        "missing results": ["--gt", gt, "--results", tmp_path / "nope.txt"],
        "missing gt": ["--gt", tmp_path / "nope.txt", "--results", gt],
        "malformed gt": ["--gt", bad, "--results", gt],
        "detections as results": ["--gt", gt, "--results", dets],
        "duplicate id": ["--gt", gt, "--results", dup],
        "no results option": ["--gt", gt],
        "bad pair": ["--pairs", f"a={gt}"],
        "frames 0": ["--gt", gt, "--results", gt, "--frames", 0],
        "frames 1e8": ["--gt", gt, "--results", gt, "--frames", 100_000_000],  # would score 1e8 frames
        "frames 300k": ["--gt", gt, "--results", gt, "--frames", 300_000],  # ~1 GB of TrackEval's data
        "duplicate names": ["--pairs", f"a={gt}:{gt}", f"a={gt}:{gt}"],
        "two modes": ["--gt", gt, "--results", gt, "--pairs", f"a={gt}:{gt}"],
        "empty results dir": ["--results-dir", tmp_path / "empty", "--gt-root", tmp_path],
    }[case]
    out = run_cli(*args)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("ros2-tracker evaluate: error:")
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_empty_results_file_is_valid(tmp_path):
    gt = synthetic_gt(tmp_path / "gt.txt", n_frames=5)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    out = run_cli("--gt", gt, "--results", empty, "--json", tmp_path / "m.json")
    assert out.returncode == 0, out.stderr
    m = json.loads((tmp_path / "m.json").read_text())["gt"]
    assert (m["MOTA"], m["FN"], m["FP"]) == (0.0, 15, 0)
