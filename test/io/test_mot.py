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
