"""`ros2-tracker track`: the benchmark contract and its bad-input behaviour."""

import json
import subprocess

import numpy as np
import pytest
from conftest import CLI

from ros2_tracker.io.mot import read_mot


def run_cli(*args, cwd=None):
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd)


def write_det(path, rows):
    path.write_text("".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def walking_dets(n_frames=20):
    rows = []
    for f in range(1, n_frames + 1):
        rows.append((f, -1, 100 + 4 * f, 100, 40, 100, 0.9, -1, -1, -1))
        rows.append((f, -1, 400 - 4 * f, 120, 40, 100, 0.8, -1, -1, -1))
    return rows


def test_contract_results_and_timing(tmp_path):
    det = write_det(tmp_path / "det.txt", walking_dets())
    out, timing = tmp_path / "res.txt", tmp_path / "t.json"
    r = run_cli("track", "--detections", det, "--output", out, "--fps", 10, "--timing", timing)
    assert r.returncode == 0, r.stderr
    res = read_mot(out)
    assert set(res.ids.tolist()) == {1, 2}
    assert res.extra.shape[1] == 3 and np.all(res.extra == -1)  # frame,id,x,y,w,h,conf,-1,-1,-1
    t = json.loads(timing.read_text())
    assert t["update_seconds"] > 0
    # every frame from min_hits on reports both objects
    assert np.bincount(res.frames)[2:].tolist() == [2] * 19


def track_walkers_with_config(tmp_path, config_text):
    """``track`` on :func:`walking_dets` at 10 Hz with a --config file holding ``config_text``; returns the
    finished process and the set of ids in its results."""
    det = write_det(tmp_path / "det.txt", walking_dets())
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config_text)
    out = tmp_path / "res.txt"
    r = run_cli("track", "--detections", det, "--output", out, "--fps", 10, "--config", cfg)
    assert r.returncode == 0, r.stderr
    return r, set(read_mot(out).ids.tolist())


def test_config_file_is_applied(tmp_path):
    _, ids = track_walkers_with_config(tmp_path, "/**:\n  ros__parameters:\n    new_track_score: 0.85\n")
    assert ids == {1}  # the 0.8 object never starts a track


def test_frames_beyond_max_detections_keep_the_highest_scoring_with_a_warning(tmp_path):
    r, ids = track_walkers_with_config(tmp_path, "max_detections: 1\n")
    assert ids == {1}  # the 0.8 object is never tracked
    assert "20 detections not tracked: frames with more than max_detections (1)" in r.stderr


def test_unbounded_detector_scores_get_a_warning_naming_the_thresholds(tmp_path):
    # ACF-style scores (MOT15 public detections reach ~120): the default thresholds assume [0, 1]
    rows = [(f, -1, x, y, w, h, s * 100, -1, -1, -1) for f, _, x, y, w, h, s, *_ in walking_dets()]
    det = write_det(tmp_path / "det.txt", rows)
    r = run_cli("track", "--detections", det, "--output", tmp_path / "res.txt", "--fps", 10)
    assert r.returncode == 0, r.stderr
    assert "detection scores reach 90" in r.stderr and "high_score / low_score / new_track_score" in r.stderr
    cfg = tmp_path / "c.yaml"  # thresholds in the detector's range: no warning
    cfg.write_text("/**:\n  ros__parameters:\n    high_score: 50.0\n    low_score: 10.0\n"
                   "    new_track_score: 60.0\n")
    r = run_cli("track", "--detections", det, "--output", tmp_path / "res.txt", "--fps", 10, "--config", cfg)
    assert r.returncode == 0 and "detection scores reach" not in r.stderr
    assert set(read_mot(tmp_path / "res.txt").ids.tolist()) == {1, 2}
    r = run_cli("track", "--detections", write_det(tmp_path / "p.txt", walking_dets()), "--output",
                tmp_path / "res.txt", "--fps", 10)
    assert "detection scores reach" not in r.stderr  # probabilities: nothing to say


def test_a_progress_bar_on_a_terminal_only(tmp_path):
    """Every frame up to the last is tracked, so a long recording takes a while: a terminal sees progress,
    a pipe (logs, benchmark runs) does not."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    det = write_det(tmp_path / "det.txt", [*walking_dets(), (20000, -1, 10, 10, 40, 100, 0.9, -1, -1, -1)])
    piped = run_cli("track", "--detections", det, "--output", tmp_path / "a.txt", "--fps", 10)
    assert piped.returncode == 0 and "frame/s" not in piped.stderr and "20000" not in piped.stderr
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([str(CLI), "track", "--detections", str(det), "--output", str(tmp_path / "b.txt"),
                             "--fps", "10"], stderr=secondary, stdout=subprocess.DEVNULL)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert proc.wait(60) == 0
    assert b"track det.txt:" in shown and b"/20000" in shown and b"frame/s" in shown, shown
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text()


def test_scores_that_never_start_a_track_get_a_warning(tmp_path):
    # a detector writing no scores (-1 in MOTChallenge files): nothing is tracked, so say why
    rows = [(f, -1, x, y, w, h, -1, -1, -1, -1) for f, _, x, y, w, h, *_ in walking_dets()]
    out = tmp_path / "res.txt"
    r = run_cli("track", "--detections", write_det(tmp_path / "det.txt", rows), "--output", out, "--fps", 10)
    assert r.returncode == 0, r.stderr
    assert "detection scores are at most -1, below what starts a track" in r.stderr
    assert "0 tracks" in r.stdout and out.read_text() == ""


@pytest.mark.parametrize("content,needle", [
    ("", "empty"),
    ("1,-1,a,b,c,d,1\n", "not a row of numbers"),
    ("1,-1,10,10\n", "columns"),
    ("1,-1,10,10,nan,50,0.9\n", "NaN"),
    ("1,-1,10,10,inf,50,0.9\n", "NaN or infinite"),
    ("1,-1,10,10,-5,50,0.9\n", "width and height"),
    ("1,-1,10,10,0,50,0.9\n", "width and height"),
    ("1,-1,10,10,40,1e200,0.9\n", "within +-1e+09 px"),  # its square overflows in the Kalman filter
    ("1,-1,-3e9,10,40,100,0.9\n", "x, y, w, h = -3e+09, 10, 40, 100"),
    ("0,-1,10,10,5,50,0.9\n", "got 0 (MOTChallenge counts frames from 1"),
    ("1.5,-1,10,10,5,50,0.9\n", "frame"),
    ("1,-1,10,10,5,50,0.9\n1700000000000,-1,10,10,5,50,0.9\n", "not hold a timestamp"),  # ms since 1970
    ("1,1e19,10,10,5,50,0.9\n", "id 10000000000000000000 is beyond"),  # int64 wrapped it to negative
])
def test_bad_detection_files_give_one_line_and_exit_2(tmp_path, content, needle):
    det = tmp_path / "det.txt"
    det.write_text(content)
    r = run_cli("track", "--detections", det, "--output", tmp_path / "o.txt")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr


def test_missing_file_and_bad_config_exit_2(tmp_path):
    r = run_cli("track", "--detections", tmp_path / "nope.txt", "--output", tmp_path / "o.txt")
    assert r.returncode == 2 and "not found" in r.stderr
    det = write_det(tmp_path / "det.txt", walking_dets())
    cfg = tmp_path / "c.yaml"
    cfg.write_text("/**:\n  ros__parameters:\n    match_iou: 1.5\n")
    r = run_cli("track", "--detections", det, "--output", tmp_path / "o.txt", "--config", cfg)
    assert r.returncode == 2 and "match_iou" in r.stderr and "Traceback" not in r.stderr
    for fps in (-3, 0, "inf", "nan", 1e-300, 1e308):  # inf put every frame at 0 s; 1e-300 overflowed
        r = run_cli("track", "--detections", det, "--output", tmp_path / "o.txt", "--fps", fps)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "--fps must be a frame rate between" in lines[0], fps
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe\x00a: 1")
    r = run_cli("track", "--detections", det, "--output", tmp_path / "o.txt", "--config", bad)
    assert r.returncode == 2 and "is not UTF-8 text" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("seqinfo,options,needle", [
    ("", ["--frames", "0"], "--frames must be between 1 and 10,000,000"),
    ("", ["--frames", "100000000"], "--frames must be between 1 and 10,000,000"),
    ("[Sequence]\nseqLength=1000000000\n", [], "seqLength must be between 0 and 10,000,000"),
    ("[Sequence]\nframeRate=inf\n", [], "frameRate must be a frame rate between 0.001 and 10000 Hz"),
    ("[Sequence]\nframeRate=1e-320\n", [], "frameRate must be a frame rate between 0.001 and 10000 Hz"),
])
def test_frame_counts_out_of_range_exit_2(tmp_path, seqinfo, options, needle):
    (tmp_path / "det").mkdir()
    det = write_det(tmp_path / "det" / "det.txt", walking_dets())
    if seqinfo:
        (tmp_path / "seqinfo.ini").write_text(seqinfo)
    r = run_cli("track", "--detections", det, "--output", tmp_path / "res.txt", *options)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], r.stderr
    assert lines[0].count("seqinfo.ini") <= 1  # the file is named once


def test_a_byte_order_mark_and_windows_line_ends_are_read(tmp_path):
    det = tmp_path / "det.txt"
    text = "".join(",".join(map(str, r)) + "\r\n" for r in walking_dets())
    det.write_bytes(b"\xef\xbb\xbf" + text.encode())  # UTF-8 byte-order mark, as spreadsheets write
    r = run_cli("track", "--detections", det, "--output", tmp_path / "res.txt", "--fps", 10)
    assert r.returncode == 0, r.stderr
    assert set(read_mot(tmp_path / "res.txt").ids.tolist()) == {1, 2}


def test_an_output_path_that_is_a_folder_exits_2(tmp_path):
    det = write_det(tmp_path / "det.txt", walking_dets())
    for option in ("--output", "--timing"):
        args = {"--output": tmp_path / "res.txt", option: tmp_path}
        r = run_cli("track", "--detections", det, "--fps", 10, *(x for kv in args.items() for x in kv))
        assert r.returncode == 2 and f"{option} {tmp_path}: a folder" in r.stderr, (option, r.stderr)
        assert "Traceback" not in r.stderr and "tracked" not in r.stdout  # refused before tracking


def test_unsorted_frames_are_sorted_with_a_note(tmp_path):
    rows = walking_dets()
    shuffled = sorted(rows, key=lambda r: -r[0])  # frames descending, order within a frame kept
    det = write_det(tmp_path / "det.txt", shuffled)
    sorted_det = write_det(tmp_path / "det_sorted.txt", rows)
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    r = run_cli("track", "--detections", det, "--output", a, "--fps", 10)
    assert r.returncode == 0 and "not sorted" in r.stderr
    run_cli("track", "--detections", sorted_det, "--output", b, "--fps", 10)
    assert a.read_text() == b.read_text()


def test_frames_tracks_frames_1_to_n_and_names_the_rows_left_out(tmp_path):
    det = write_det(tmp_path / "det.txt", walking_dets(20))  # two people, frames 1..20
    r = run_cli("track", "--detections", det, "--output", tmp_path / "res.txt", "--fps", 10, "--frames", 8)
    assert r.returncode == 0 and "--frames 8: 24 detection rows after frame 8 are not tracked" in r.stderr
    assert r.stdout.startswith("tracked 8 frames") and read_mot(tmp_path / "res.txt").last_frame == 8
    r = run_cli("track", "--detections", det, "--output", tmp_path / "res.txt", "--fps", 10, "--frames", 30)
    assert r.returncode == 0 and r.stdout.startswith("tracked 30 frames")  # trailing empty frames count


def test_calibration_with_tracktor_is_refused_not_ignored(tmp_path):
    det = write_det(tmp_path / "det.txt", walking_dets())
    r = run_cli("track", "--tracker", "tracktor", "--detections", det, "--output", tmp_path / "o.txt",
                "--calibration", tmp_path / "any.xml")
    assert r.returncode == 2 and "--calibration needs the core tracker" in r.stderr


def test_fps_from_seqinfo(tmp_path):
    """A person unseen for 12 frames: 1.7 s at seqinfo's 7 Hz, longer than max_lost_s (1.5 s), so a new id;
    0.4 s at an assumed 30 Hz would keep the old one."""
    seq = tmp_path / "SEQ"
    (seq / "det").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ\nframeRate=7\nseqLength=25\n")
    rows = [(f, -1, 100 + f, 100, 40, 100, 0.9, -1, -1, -1) for f in [*range(1, 6), *range(18, 26)]]
    det = write_det(seq / "det" / "det.txt", rows)
    out = tmp_path / "res.txt"
    r = run_cli("track", "--detections", det, "--output", out)
    assert r.returncode == 0 and "assuming 30" not in r.stderr
    assert r.stdout.startswith("tracked 25 frames")
    assert len(set(read_mot(out).ids.tolist())) == 2
    r = run_cli("track", "--detections", det, "--output", out, "--fps", 30)
    assert r.returncode == 0 and len(set(read_mot(out).ids.tolist())) == 1


def test_a_det_file_linked_into_a_sequence_takes_that_sequences_frame_rate(tmp_path):
    """Evaluators link det files into a MOT tree: seqinfo.ini beside the link counts (7 Hz: 2 ids)."""
    seq = tmp_path / "SEQ"
    (seq / "det").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ\nframeRate=7\nseqLength=25\n")
    rows = [(f, -1, 100 + f, 100, 40, 100, 0.9, -1, -1, -1) for f in [*range(1, 6), *range(18, 26)]]
    (seq / "det" / "det.txt").symlink_to(write_det(tmp_path / "elsewhere.txt", rows))
    out = tmp_path / "res.txt"
    r = run_cli("track", "--detections", seq / "det" / "det.txt", "--output", out)
    assert r.returncode == 0 and "assuming 30" not in r.stderr
    assert len(set(read_mot(out).ids.tolist())) == 2


def test_detections_beyond_seqlength_get_a_note(tmp_path):
    seq = tmp_path / "SEQ"
    (seq / "det").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ\nframeRate=10\nseqLength=15\n")
    det = write_det(seq / "det" / "det.txt", walking_dets(20))
    r = run_cli("track", "--detections", det, "--output", tmp_path / "res.txt")
    assert r.returncode == 0 and "10 detection rows after seqLength 15 are tracked" in r.stderr


def test_an_output_that_is_the_detections_file_is_refused(tmp_path):
    det = write_det(tmp_path / "res.online.txt", walking_dets())
    before = det.read_text()
    for args in (["--output", det], ["--output", tmp_path / "res.txt", "--offline"]):  # RES.online.txt
        r = run_cli("track", "--detections", det, "--fps", 10, *args)
        assert r.returncode == 2 and "the same file as --detections" in r.stderr, (args, r.stderr)
        assert det.read_text() == before and not (tmp_path / "res.txt").exists()


def test_a_seqinfo_name_with_a_percent_sign_or_another_encoding_is_read(tmp_path):
    seq = tmp_path / "SEQ"
    (seq / "det").mkdir(parents=True)
    det = write_det(seq / "det" / "det.txt", walking_dets())
    for name in (b"crowd 100%", b"caf\xe9 (latin-1)"):  # configparser's interpolation; not UTF-8
        (seq / "seqinfo.ini").write_bytes(b"[Sequence]\nname=" + name + b"\nframeRate=7\nseqLength=25\n")
        r = run_cli("track", "--detections", det, "--output", tmp_path / "res.txt")
        assert r.returncode == 0 and r.stdout.startswith("tracked 25 frames"), r.stderr


def test_frames_are_walked_in_order_with_the_empty_ones_and_without_memory_per_frame():
    from ros2_tracker.io.mot import MotRows

    frames = np.array([2, 2, 5, 9])
    rows = MotRows(frames, -np.ones(4, dtype=np.int64), np.ones((4, 4)), np.ones(4), np.empty((4, 0)))
    walked = [(f, idx.tolist()) for f, idx in rows.by_frame(1, 10)]
    assert walked == [(1, []), (2, [0, 1]), (3, []), (4, []), (5, [2]), (6, []), (7, []), (8, []), (9, [3]),
                      (10, [])]
    assert [(f, idx.tolist()) for f, idx in rows.by_frame(5, 6)] == [(5, [2]), (6, [])]
    # a billion frames ahead: the walk starts at once (an index array per frame up front would be 8 GB)
    assert next(rows.by_frame(1, 10**9))[0] == 1


def test_tracktor_refuses_an_output_that_is_the_detections_file(tmp_path):
    det = write_det(tmp_path / "det.txt", walking_dets())
    before = det.read_text()
    r = run_cli("track", "--tracker", "tracktor", "--sequence", tmp_path, "--detections", det,
                "--output", det)
    assert r.returncode == 2 and "the same file as --detections" in r.stderr, r.stderr
    assert det.read_text() == before


def test_tracktor_without_torch_is_one_line_and_exit_2(tmp_path):
    """A robot without the torch wheel: `track --tracker tracktor` died with a ModuleNotFoundError
    traceback."""
    import os

    hide = tmp_path / "hide" / "torch"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'torch'\", "
                                      "name='torch')\n")
    det = write_det(tmp_path / "det.txt", walking_dets())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hide.parent), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([str(CLI), "track", "--tracker", "tracktor", "--sequence", str(tmp_path),
                        "--detections", str(det), "--output", str(tmp_path / "o.txt")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "track --tracker tracktor needs torch and torchvision (torch is not installed)" in r.stderr


def test_tracktor_detections_are_capped_per_frame_keeping_the_highest_scoring():
    from ros2_tracker.io.mot import MotRows
    from ros2_tracker.regression.command import cap_detections_per_frame

    frames = np.array([2, 1, 1, 2, 1, 3])
    scores = np.array([0.5, 0.1, 0.9, 0.7, 0.9, 0.2])
    dets = MotRows(frames, np.full(6, -1), np.arange(24.0).reshape(6, 4) + 1, scores, np.zeros((6, 3)))
    kept, dropped = cap_detections_per_frame(dets, 2)
    assert dropped == 1 and kept.frames.tolist() == [2, 1, 2, 1, 3]  # file order kept
    assert kept.scores.tolist() == [0.5, 0.9, 0.7, 0.9, 0.2]  # frame 1's 0.1 left out
    assert cap_detections_per_frame(dets, 3) == (dets, 0)
