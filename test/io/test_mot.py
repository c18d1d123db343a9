"""MOTChallenge text files: what the reader fills in, what the writer puts where."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_tracker.io.mot import MotFormatError, read_mot, write_results


def test_six_column_rows_get_confidence_one_and_a_trailing_comma_is_read(tmp_path):
    p = tmp_path / "det.txt"
    p.write_text("1,-1,10,20,30,40\n2,-1,11,21,30,40,0.5,\n")
    rows = read_mot(p)
    assert rows.scores.tolist() == [1.0, 0.5]
    np.testing.assert_array_equal(rows.boxes_tlwh, [[10, 20, 30, 40], [11, 21, 30, 40]])


def test_rows_of_different_widths_are_an_error_naming_the_line(tmp_path):
    """Padding or cutting a row would shift what its columns mean (a MOT17 ground-truth row without its
    class column, a results row of another layout); TrackEval refuses such files too."""
    p = tmp_path / "gt.txt"
    p.write_text("1,1,10,20,30,40,1,1,1.0\n1,2,50,20,30,40,1\n")
    with pytest.raises(MotFormatError, match=r"gt.txt:2: 7 columns, line 1 has 9"):
        read_mot(p)
    p.write_text("1,1,10,20,30,40,1,-1,-1,-1\n1,2,50,20,30,40,1,-1,-1,-1,7\n")
    with pytest.raises(MotFormatError, match=r":2: 11 columns, line 1 has 10"):
        read_mot(p)


def test_results_are_written_sorted_by_frame_then_id_with_the_contract_columns(tmp_path):
    out = tmp_path / "res.txt"
    write_results(out, np.array([2, 1, 2, 1]), np.array([5, 7, 3, 2]),
                  np.array([[1.0, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]),
                  np.array([0.9, 0.8, 0.7, 0.6]))
    assert out.read_text().splitlines() == [
        "1,2,13.00,14.00,15.00,16.00,0.6000,-1,-1,-1",
        "1,7,5.00,6.00,7.00,8.00,0.8000,-1,-1,-1",
        "2,3,9.00,10.00,11.00,12.00,0.7000,-1,-1,-1",
        "2,5,1.00,2.00,3.00,4.00,0.9000,-1,-1,-1",
    ]


def test_3d_positions_fill_the_world_columns_where_known(tmp_path):
    """With a depth camera (replay of use_depth) the format's x, y, z columns hold each row's position; a row
    without one keeps -1,-1,-1, and the file reads back (and scores) as any other."""
    out = tmp_path / "res.txt"
    world = np.array([[0.25, -0.5, 3.0], [np.nan, np.nan, np.nan], [1.23456, 0.0, 7.5]])
    write_results(out, np.array([1, 1, 2]), np.array([2, 1, 1]), np.ones((3, 4)), world=world)
    assert out.read_text().splitlines() == [
        "1,1,1.00,1.00,1.00,1.00,1.0000,-1,-1,-1",
        "1,2,1.00,1.00,1.00,1.00,1.0000,0.250,-0.500,3.000",
        "2,1,1.00,1.00,1.00,1.00,1.0000,1.235,0.000,7.500",
    ]
    assert read_mot(out).extra.tolist() == [[-1, -1, -1], [0.25, -0.5, 3.0], [1.235, 0.0, 7.5]]


def test_a_well_formed_file_and_one_the_line_parser_reads_give_the_same_rows(tmp_path):
    """Well-formed files go through NumPy's reader; one with trailing commas and whitespace-only lines
    (which it refuses) through the line-by-line parser: the same rows either way."""
    rows = ["3,-1,10.5,20,30,40,0.9", "1,-1,1e3,2.,3,4,0.25", "1,-1,5,6,7,8,0.5", "2,-1,-1,-2,3,4,1"]
    fast, slow = tmp_path / "fast.txt", tmp_path / "slow.txt"
    fast.write_text("\n".join(rows) + "\n")
    slow.write_text("\n   \n".join(r + "," for r in rows) + "\n")
    a, b = read_mot(fast), read_mot(slow)
    for name in ("frames", "ids", "boxes_tlwh", "scores", "extra"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.frames.tolist() == [1, 1, 2, 3]  # sorted, stable
    assert a.boxes_tlwh[0].tolist() == [1000.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("blank", ["\n", "\n \t\n"])  # skipped by NumPy's reader / by the line parser
def test_an_error_names_the_line_in_the_file_not_the_row(tmp_path, blank):
    p = tmp_path / "det.txt"
    skipped = blank.count("\n")
    p.write_text(f"1,-1,1,2,3,4,1\n{blank}2,-1,1,2,3,4,1\n2,-1,nan,2,3,4,1\n")
    with pytest.raises(MotFormatError, match=rf"det.txt:{3 + skipped}: NaN or infinite value"):
        read_mot(p)
    p.write_text(f"1,-1,1,2,3,4,1\n{blank}2,-1,1,2,0,4,1\n")
    with pytest.raises(MotFormatError, match=rf"det.txt:{2 + skipped}: box width and height"):
        read_mot(p)


@pytest.mark.parametrize("end", ["", ","])  # NumPy's reader / the line parser (trailing commas)
def test_a_large_file_is_read_without_python_lists_of_its_values(tmp_path, end):
    """200,000 rows (9 MB): the reader's peak memory stays within a few times the result's 11 MB (lists of
    Python floats took over ten times as much)."""
    import tracemalloc

    n = 200_000
    p = tmp_path / "det.txt"
    frames = np.arange(n) // 20 + 1
    p.write_text("".join(f"{f},-1,{i % 1000}.5,{i % 700}.25,30,60,0.{i % 10}{end}\n"
                         for i, f in enumerate(frames)))
    tracemalloc.start()
    try:
        rows = read_mot(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(rows) == n and rows.frames[-1] == frames[-1]
    assert peak < 5 * n * 7 * 8, f"peak {peak / 1e6:.0f} MB for {n * 7 * 8 / 1e6:.0f} MB of values"


def test_results_written_block_by_block_read_back_as_written(tmp_path, monkeypatch):
    """Rows are formatted a block at a time (here 3 rows, so the blocks split frames): the file holds every
    row once, sorted, with float32 boxes and no scores (confidence 1) as well."""
    import ros2_tracker.io.mot as mot

    monkeypatch.setattr(mot, "_WRITE_BLOCK", 3)
    rng = np.random.default_rng(1)
    frames, ids = rng.integers(1, 5, 10), rng.permutation(10) + 1
    boxes = (rng.random((10, 4)) * 100 + 1).astype(np.float32)
    out = tmp_path / "res.txt"
    write_results(out, frames, ids, boxes)
    rows = read_mot(out)
    order = np.lexsort((ids, frames))
    assert rows.frames.tolist() == frames[order].tolist() and rows.ids.tolist() == ids[order].tolist()
    np.testing.assert_allclose(rows.boxes_tlwh, boxes[order], atol=0.005)
    assert rows.scores.tolist() == [1.0] * 10
