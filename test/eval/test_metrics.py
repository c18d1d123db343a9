"""ros2_tracker.eval.metrics: TrackEval-backed scores, both ground-truth styles, reports and errors."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared

pytest.importorskip("trackeval", reason="trackeval is not installed (pip-only: pip install trackeval)")

from ros2_tracker.eval.metrics import (
    COMBINED,
    Metrics,
    SequencePair,
    evaluate_many,
    evaluate_sequence,
    format_table,
    write_csv,
    write_json,
)
from ros2_tracker.io.mot import MotFormatError, read_mot

DISTRACTOR_CLASSES = (2, 7, 8, 12)  # MOT17: person on vehicle, static person, distractor, reflection


# --- helpers ------------------------------------------------------------------------------------


def synthetic_gt(path: Path, n_frames: int = 30, n_objects: int = 4) -> Path:
    """MOT15-style ground truth: ``n_objects`` well separated walkers, 10 columns."""
    lines = []
    for f in range(1, n_frames + 1):
        for k in range(n_objects):
            x, y = 20.0 + 150.0 * k + 2.0 * f, 50.0 + 1.0 * f
            lines.append(f"{f},{k + 1},{x:.2f},{y:.2f},40,100,1,-1,-1,-1")
    path.write_text("\n".join(lines) + "\n")
    return path


def read_lines(path: Path) -> list[list[str]]:
    return [ln.split(",") for ln in path.read_text().splitlines() if ln.strip()]


def write_lines(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("".join(",".join(r) + "\n" for r in rows))
    return path


def swap_ids_from(rows: list[list[str]], a: str, b: str, first_frame: int) -> list[list[str]]:
    out = []
    for r in rows:
        r = list(r)
        if int(r[0]) >= first_frame and r[1] in (a, b):
            r[1] = b if r[1] == a else a
        out.append(r)
    return out


def iou_tlwh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) IoU of top-left/width/height boxes, written here so the cross-check shares no code."""
    a0, a1 = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b0, b1 = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    wh = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return inter / union


def motmetrics_scores(gt_path: Path, res_path: Path) -> dict[str, float]:
    """MOTA / IDF1 / counts by py-motmetrics (IoU >= 0.5), frames 1..last gt frame."""
    import motmetrics as mm

    gt = read_mot(gt_path, validate_boxes=False)
    res = read_mot(res_path, allow_empty=True, validate_boxes=False)
    last = gt.last_frame
    acc = mm.MOTAccumulator(auto_id=True)
    res_frames = dict(res.by_frame(1, last))
    for frame, g in gt.by_frame(1, last):
        r = res_frames[frame]
        dist = 1.0 - iou_tlwh(gt.boxes_tlwh[g], res.boxes_tlwh[r])
        dist[dist > 0.5] = np.nan
        acc.update(gt.ids[g], res.ids[r], dist)
    names = ["mota", "idf1", "num_switches", "num_false_positives", "num_misses"]
    return mm.metrics.create().compute(acc, metrics=names, name="seq").iloc[0].to_dict()


def tracker_results(seq_dir: Path, out: Path) -> Path:
    """Run the project's tracker (default config) on the sequence's Faster R-CNN detections."""
    from ros2_tracker.core.tracker import Tracker, TrackerConfig
    from ros2_tracker.io.mot import write_results
    from ros2_tracker.io.sequence import read_sequence_info
    from ros2_tracker.offline import track_mot_detections

    info = read_sequence_info(seq_dir)
    dets = read_mot(seq_dir / "det" / "det_frcnn.txt")
    res = track_mot_detections(dets, Tracker(TrackerConfig()), info.fps, last_frame=info.length)
    write_results(out, res.frames, res.ids, res.boxes_tlwh, res.scores)
    return out


# --- scores on constructed results --------------------------------------------------------------


@pytest.fixture(params=["synthetic", "TUD-Campus", "TUD-Stadtmitte", "PETS09-S3MF1",
                        "MOT17-mini/train/MOT17-09-FRCNN"])
def gt_file(request, tmp_path) -> Path:
    if request.param == "synthetic":
        return synthetic_gt(tmp_path / "gt.txt")
    return require_shared("data", request.param, "gt", "gt.txt")


def test_perfect_results_score_one(gt_file, tmp_path):
    rows = read_lines(gt_file)
    if len(rows[0]) == 9:  # MOT17: results hold the scored pedestrians (cars, occluders... would be FPs)
        rows = [r for r in rows if r[6] == "1" and r[7] == "1"]
    m = evaluate_sequence(gt_file, write_lines(tmp_path / "res.txt", rows))
    gt = read_mot(gt_file, validate_boxes=False)
    assert (m.HOTA, m.DetA, m.AssA, m.MOTA, m.IDF1) == pytest.approx((1.0,) * 5)
    assert (m.IDSW, m.FP, m.FN) == (0, 0, 0)
    assert m.num_frames == gt.last_frame
    if gt.extra.shape[1] != 2:  # MOT15 style: every id is scored
        assert m.num_gt_ids == len(np.unique(gt.ids))


def test_swapping_two_ids_halfway_is_an_identity_error(tmp_path):
    gt_path = synthetic_gt(tmp_path / "gt.txt", n_frames=30)
    res = write_lines(tmp_path / "res.txt", swap_ids_from(read_lines(gt_path), "1", "2", first_frame=16))
    m = evaluate_sequence(gt_path, res)
    assert m.IDSW == 2  # both ground-truth objects change their matched id once
    assert m.IDF1 < 1.0 and m.AssA < 1.0 and m.HOTA < 1.0
    assert m.DetA == pytest.approx(1.0) and (m.FP, m.FN) == (0, 0)
    assert m.MOTA == pytest.approx(1.0 - 2 / (30 * 4))


def test_empty_results_miss_everything(tmp_path, gt_file):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    m = evaluate_sequence(gt_file, empty)
    assert m.MOTA == 0.0 and m.HOTA == 0.0 and m.IDF1 == 0.0
    assert m.FP == 0 and m.IDSW == 0
    assert m.FN == scored_gt_boxes(gt_file) > 0


def scored_gt_boxes(gt_file: Path) -> int:
    """Ground-truth boxes the MOTChallenge protocol scores, counted from the file itself."""
    gt = read_mot(gt_file, validate_boxes=False)
    if gt.extra.shape[1] == 2:  # MOT17: consider flag 1 and pedestrian class
        return int(((gt.scores != 0) & (gt.extra[:, 0] == 1)).sum())
    return int((gt.scores != 0).sum())


def test_missing_half_the_boxes_halves_recall(tmp_path):
    gt_path = synthetic_gt(tmp_path / "gt.txt", n_frames=20, n_objects=4)
    rows = [r for r in read_lines(gt_path) if r[1] in ("1", "2")]
    m = evaluate_sequence(gt_path, write_lines(tmp_path / "res.txt", rows))
    assert m.FN == 40 and m.FP == 0 and m.MOTA == pytest.approx(0.5)
    assert m.DetA == pytest.approx(0.5) and m.AssA == pytest.approx(1.0)


def test_results_after_the_last_gt_frame_are_ignored_unless_asked(tmp_path):
    gt_path = synthetic_gt(tmp_path / "gt.txt", n_frames=10, n_objects=2)
    rows = [*read_lines(gt_path), ["12", "9", "500", "300", "40", "100", "1", "-1", "-1", "-1"]]
    res = write_lines(tmp_path / "res.txt", rows)
    assert evaluate_sequence(gt_path, res).FP == 0
    longer = evaluate_sequence(gt_path, res, num_frames=12)
    assert longer.FP == 1 and longer.num_frames == 12
    shorter = evaluate_sequence(gt_path, res, num_frames=5)
    assert shorter.num_frames == 5 and shorter.FN == 0 and shorter.FP == 0


def test_evaluation_is_quiet_and_writes_nothing(tmp_path, monkeypatch, capfd):
    (tmp_path / "in").mkdir()
    gt_path = synthetic_gt(tmp_path / "in" / "gt.txt")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    evaluate_many([("a", gt_path, gt_path), ("b", gt_path, gt_path)])
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert os.listdir(work) == [] and sorted(os.listdir(tmp_path / "in")) == ["gt.txt"]


# --- agreement with other implementations -------------------------------------------------------


@pytest.mark.parametrize("seq", ["TUD-Campus", "TUD-Stadtmitte"])
def test_agrees_with_motmetrics_on_tracker_output(tmp_path, seq):
    seq_dir = require_shared("data", seq)
    gt_path = seq_dir / "gt" / "gt.txt"
    res = tracker_results(seq_dir, tmp_path / "res.txt")
    ours = evaluate_sequence(gt_path, res)
    ref = motmetrics_scores(gt_path, res)
    assert 0.0 < ours.MOTA < 1.0  # a real, imperfect result: the comparison means something
    assert ours.IDF1 == pytest.approx(ref["idf1"], abs=1e-3)
    assert (ours.FP, ours.FN) == (ref["num_false_positives"], ref["num_misses"])
    # The two count an identity switch differently after a gap: TrackEval keeps a match only from
    # the previous frame, motmetrics from the last frame the object was matched. MOTA may differ by
    # exactly that, and by nothing else.
    n_gt = scored_gt_boxes(gt_path)
    assert (ours.MOTA - ref["mota"]) * n_gt == pytest.approx(ref["num_switches"] - ours.IDSW, abs=1e-6)
    assert abs(ours.IDSW - ref["num_switches"]) <= max(2, 0.25 * ref["num_switches"])


def test_agrees_with_motmetrics_on_perturbed_ground_truth(tmp_path):
    gt_path = require_shared("data", "PETS09-S3MF1", "gt", "gt.txt")
    rng = np.random.default_rng(7)
    rows = []
    for r in read_lines(gt_path):
        if rng.random() < 0.15:
            continue  # a miss
        r = list(r)
        r[2], r[3] = (f"{float(v) + rng.normal(0, 6):.2f}" for v in r[2:4])  # jitter: some fall below IoU 0.5
        rows.append(r)
        if rng.random() < 0.05:  # a false positive elsewhere, with a fresh id
            rows.append([r[0], str(1000 + len(rows)), "5", "5", "30", "80", "1", "-1", "-1", "-1"])
    res = write_lines(tmp_path / "res.txt", swap_ids_from(rows, "1", "2", first_frame=50))
    ours = evaluate_sequence(gt_path, res)
    ref = motmetrics_scores(gt_path, res)
    assert ours.IDSW > 0 and ours.FP > 0 and 0.3 < ours.MOTA < 0.95  # every error kind is present
    assert ours.MOTA == pytest.approx(ref["mota"], abs=1e-3)
    assert ours.IDF1 == pytest.approx(ref["idf1"], abs=1e-3)
    assert ours.FP == ref["num_false_positives"] and ours.FN == ref["num_misses"]


def _trackeval_official(tmp_path: Path, benchmark: str, seqs: dict[str, tuple[Path, Path]]) -> dict:
    """TrackEval's own Evaluator and file loader on its folder layout (results cut to the gt frames)."""
    import trackeval

    lengths = {}
    for name, (gt_path, res_path) in seqs.items():
        n = read_mot(gt_path, validate_boxes=False).last_frame
        lengths[name] = n
        (tmp_path / "gt" / name / "gt").mkdir(parents=True)
        (tmp_path / "gt" / name / "gt" / "gt.txt").write_text(gt_path.read_text())
        (tmp_path / "trk" / "t" / "data").mkdir(parents=True, exist_ok=True)
        rows = [r for r in read_lines(res_path) if int(r[0]) <= n]
        write_lines(tmp_path / "trk" / "t" / "data" / f"{name}.txt", rows)
    off = {"PRINT_CONFIG": False}
    evaluator = trackeval.Evaluator({**off, "USE_PARALLEL": False, "PRINT_RESULTS": False,
                                     "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False,
                                     "OUTPUT_DETAILED": False, "PLOT_CURVES": False})
    dataset = trackeval.datasets.MotChallenge2DBox({
        **off, "GT_FOLDER": str(tmp_path / "gt"), "TRACKERS_FOLDER": str(tmp_path / "trk"),
        "SKIP_SPLIT_FOL": True, "SEQ_INFO": lengths, "TRACKERS_TO_EVAL": ["t"], "BENCHMARK": benchmark})
    tm = trackeval.metrics
    metrics = [tm.HOTA(), tm.CLEAR(dict(off)), tm.Identity(dict(off))]
    with contextlib.redirect_stdout(io.StringIO()):
        results, _ = evaluator.evaluate([dataset], metrics)
    return results["MotChallenge2DBox"]["t"]


def _assert_same(ours: Metrics, official: dict) -> None:
    assert ours.HOTA == pytest.approx(float(np.mean(official["HOTA"]["HOTA"])), abs=1e-12)
    assert ours.AssA == pytest.approx(float(np.mean(official["HOTA"]["AssA"])), abs=1e-12)
    assert ours.MOTA == pytest.approx(official["CLEAR"]["MOTA"], abs=1e-12)
    assert ours.IDF1 == pytest.approx(official["Identity"]["IDF1"], abs=1e-12)
    assert (ours.IDSW, ours.FP, ours.FN) == (official["CLEAR"]["IDSW"], official["CLEAR"]["CLR_FP"],
                                             official["CLEAR"]["CLR_FN"])


def test_mot17_matches_trackeval_evaluator_on_its_folder_layout(tmp_path):
    root = require_shared("data", "MOT17-mini", "train")
    seqs = {}
    for name in ("MOT17-04-FRCNN", "MOT17-13-FRCNN"):
        gt_path = root / name / "gt" / "gt.txt"
        # results: the public detections, each with its own id, so some hit distractors and some miss
        dets = [r for r in read_lines(root / name / "det" / "det.txt")]
        rows = [[r[0], str(i + 1), *r[2:7], "-1", "-1", "-1"] for i, r in enumerate(dets)]
        seqs[name] = (gt_path, write_lines(tmp_path / f"{name}.txt", rows))
    official = _trackeval_official(tmp_path / "official", "MOT17", seqs)
    rows = dict(evaluate_many([SequencePair(n, g, r) for n, (g, r) in seqs.items()]))
    for name in seqs:
        _assert_same(rows[name], official[name]["pedestrian"])
        assert rows[name].FP > 0 and rows[name].FN > 0
    _assert_same(rows[COMBINED], official["COMBINED_SEQ"]["pedestrian"])


def test_mot15_matches_trackeval_evaluator_on_its_folder_layout(tmp_path):
    seq_dir = require_shared("data", "TUD-Campus")
    res = tracker_results(seq_dir, tmp_path / "res.txt")
    seqs = {"TUD-Campus": (seq_dir / "gt" / "gt.txt", res)}
    official = _trackeval_official(tmp_path / "official", "MOT15", seqs)
    _assert_same(evaluate_sequence(seq_dir / "gt" / "gt.txt", res), official["TUD-Campus"]["pedestrian"])


def test_scores_do_not_depend_on_id_values_huge_ids_and_trailing_commas_included(tmp_path):
    seq_dir = require_shared("data", "TUD-Campus")
    gt_path = seq_dir / "gt" / "gt.txt"
    res = tracker_results(seq_dir, tmp_path / "res.txt")
    expected = evaluate_sequence(gt_path, res)
    # TrackEval indexes a table by id: 2**31 asked for 16 GiB, 2**40 for 8 TiB
    big = write_lines(tmp_path / "big.txt", [[r[0], str(int(r[1]) + 2**40), *r[2:]] for r in read_lines(res)])
    big_gt = write_lines(tmp_path / "big_gt.txt", [[r[0], str(int(r[1]) * 7 + 2**31), *r[2:]]
                                                    for r in read_lines(gt_path)])
    assert evaluate_sequence(big_gt, big).as_dict() == expected.as_dict()
    # a trailing comma on every row, as some writers leave (TrackEval reads it)
    comma = tmp_path / "comma.txt"
    comma.write_text("".join(ln + ",\n" for ln in res.read_text().splitlines()))
    assert evaluate_sequence(gt_path, comma).as_dict() == expected.as_dict()


# --- MOT17 ground truth -------------------------------------------------------------------------


def test_mot20_scores_non_mot_vehicles_as_distractors_like_trackeval(tmp_path):
    root = require_shared("data", "MOT17-mini", "train", "MOT17-13-FRCNN")
    # MOT17-13's cars (class 3) relabelled as MOT20's non-MOT vehicles (class 6), a distractor there only
    gt_path = write_lines(tmp_path / "gt.txt", [[*r[:7], "6" if r[7] == "3" else r[7], *r[8:]]
                                                 for r in read_lines(root / "gt" / "gt.txt")])
    dets = read_lines(root / "det" / "det.txt")  # the public detections, and a box on every vehicle
    vehicles = [r for r in read_lines(gt_path) if r[7] == "6"]
    assert vehicles
    res = write_lines(tmp_path / "res.txt", [[r[0], str(i + 1), *r[2:6], "1", "-1", "-1", "-1"]
                                              for i, r in enumerate(dets + vehicles)])
    official = _trackeval_official(tmp_path / "official", "MOT20", {"s": (gt_path, res)})
    mot20 = evaluate_sequence(gt_path, res, gt_format="mot20")
    _assert_same(mot20, official["s"]["pedestrian"])
    assert evaluate_sequence(gt_path, res, gt_format="mot17").FP > mot20.FP  # boxes on vehicles count there


def test_mot17_boxes_on_distractors_are_neither_hits_nor_false_positives(tmp_path):
    gt_path = require_shared("data", "MOT17-mini", "train", "MOT17-02-FRCNN", "gt", "gt.txt")
    rows = read_lines(gt_path)
    scored = [r for r in rows if r[6] == "1" and r[7] == "1"]
    distractors = [r for r in rows if int(r[7]) in DISTRACTOR_CLASSES]
    assert scored and distractors
    on_distractors = [[r[0], str(1000 + int(r[1])), *r[2:6], "1", "-1", "-1", "-1"] for r in distractors]
    as_results = [[*r[:6], "1", "-1", "-1", "-1"] for r in scored]  # results have 10 columns
    res = write_lines(tmp_path / "res.txt", as_results + on_distractors)

    m = evaluate_sequence(gt_path, res)
    assert (m.MOTA, m.IDF1, m.HOTA) == pytest.approx((1.0, 1.0, 1.0))
    assert (m.FP, m.FN) == (0, 0)
    assert m.num_gt_ids == len({r[1] for r in scored})
    assert m.num_frames == 4  # MOT17-mini's gt covers the first 4 frames of MOT17-02

    # Read as MOT15 (no distractor handling), those boxes become false positives (unless they hit a
    # consider=1 box) and the ignored gt rows stay ignored.
    as_mot15 = evaluate_sequence(gt_path, res, gt_format="mot15")
    assert as_mot15.FP > 0 and as_mot15.MOTA < 1.0


def test_mot17_unmatched_non_pedestrians_count_as_missed(tmp_path):
    gt_path = require_shared("data", "MOT17-mini", "train", "MOT17-02-FRCNN", "gt", "gt.txt")
    rows = read_lines(gt_path)
    pedestrians = [r for r in rows if r[6] == "1" and r[7] == "1"]
    dropped = [r for r in pedestrians if r[1] == pedestrians[0][1]]
    res = write_lines(tmp_path / "res.txt", [r for r in pedestrians if r not in dropped])
    m = evaluate_sequence(gt_path, res)
    assert m.FN == len(dropped) and m.FP == 0


# --- combination and reports --------------------------------------------------------------------


def test_combined_row_sums_counts_over_sequences(tmp_path):
    gt_a = synthetic_gt(tmp_path / "a.txt", n_frames=20, n_objects=3)
    gt_b = synthetic_gt(tmp_path / "b.txt", n_frames=10, n_objects=2)
    res_a = write_lines(tmp_path / "ra.txt", swap_ids_from(read_lines(gt_a), "1", "2", first_frame=11))
    res_b = write_lines(tmp_path / "rb.txt", [r for r in read_lines(gt_b) if r[1] == "1"])
    rows = evaluate_many([("a", gt_a, res_a), SequencePair("b", gt_b, res_b)])
    assert [n for n, _ in rows] == ["a", "b", COMBINED]
    a, b, comb = (m for _, m in rows)
    assert a == evaluate_sequence(gt_a, res_a)
    assert (comb.FN, comb.FP, comb.IDSW) == (a.FN + b.FN, a.FP + b.FP, a.IDSW + b.IDSW)
    assert (comb.num_gt_ids, comb.num_frames) == (5, 30)
    n_gt = 20 * 3 + 10 * 2
    assert comb.MOTA == pytest.approx((n_gt - comb.FN - comb.FP - comb.IDSW) / n_gt)
    assert min(a.HOTA, b.HOTA) < comb.HOTA < max(a.HOTA, b.HOTA)


def test_report_table_csv_and_json(tmp_path):
    gt_path = synthetic_gt(tmp_path / "gt.txt", n_frames=20, n_objects=4)
    res = write_lines(tmp_path / "res.txt", [r for r in read_lines(gt_path) if r[1] != "4"])
    rows = evaluate_many([("seq-one", gt_path, gt_path), ("seq-two", gt_path, res)])

    table = format_table(rows).splitlines()
    assert table[0].split() == ["sequence", "HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN"]
    assert table[1].split() == ["seq-one", "100.0", "100.0", "100.0", "100.0", "100.0", "0", "0", "0"]
    assert table[2].split()[4] == "75.0" and table[2].split()[-1] == "20"
    assert table[3].startswith(COMBINED) and len({len(line) for line in table}) == 1  # aligned

    write_csv(tmp_path / "out" / "m.csv", rows)
    with (tmp_path / "out" / "m.csv").open() as fh:
        back = list(csv.DictReader(fh))
    assert [r["sequence"] for r in back] == ["seq-one", "seq-two", COMBINED]
    assert float(back[1]["MOTA"]) == pytest.approx(rows[1][1].MOTA) and int(back[1]["FN"]) == 20

    write_json(tmp_path / "out" / "m.json", rows)
    data = json.loads((tmp_path / "out" / "m.json").read_text())
    assert list(data) == ["seq-one", "seq-two", COMBINED]
    assert data["seq-two"] == rows[1][1].as_dict()


# --- bad input ----------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors(tmp_path):
    gt_path = synthetic_gt(tmp_path / "gt.txt", n_frames=5, n_objects=2)
    rows = read_lines(gt_path)
    cases = {
        "missing": (tmp_path / "nope.txt", gt_path, "file not found"),
        "empty gt": (write_lines(tmp_path / "empty.txt", []), gt_path, "empty"),
        "duplicate id": (gt_path, write_lines(tmp_path / "dup.txt", [*rows, rows[0]]),
                         "more than once in frame 1"),
        "detections": (gt_path, write_lines(tmp_path / "det.txt", [[r[0], "-1", *r[2:]] for r in rows]),
                       "negative track id"),
        "bad class": (write_lines(tmp_path / "c.txt", [[*r[:6], "1", "42", "1"] for r in rows]), gt_path,
                      "class id 1..13"),
    }
    for g, r, message in cases.values():
        with pytest.raises(MotFormatError, match=message):
            evaluate_sequence(g, r)


def test_bad_arguments_raise_value_errors(tmp_path):
    gt_path = synthetic_gt(tmp_path / "gt.txt", n_frames=5, n_objects=2)
    with pytest.raises(ValueError, match="num_frames"):
        evaluate_sequence(gt_path, gt_path, num_frames=0)
    with pytest.raises(ValueError, match="gt_format"):
        evaluate_sequence(gt_path, gt_path, gt_format="mot99")
    with pytest.raises(ValueError, match="unique"):
        evaluate_many([("a", gt_path, gt_path), ("a", gt_path, gt_path)])
    with pytest.raises(ValueError, match="no sequences"):
        evaluate_many([])
