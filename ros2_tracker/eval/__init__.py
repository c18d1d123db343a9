"""Evaluation of tracking results: a thin wrapper around TrackEval (HOTA, CLEAR/MOTA, IDF1)."""

from ros2_tracker.eval.metrics import (
    COMBINED,
    GT_FORMATS,
    Metrics,
    SequencePair,
    evaluate_many,
    evaluate_sequence,
    format_table,
    write_csv,
    write_json,
)

__all__ = [
    "COMBINED",
    "GT_FORMATS",
    "Metrics",
    "SequencePair",
    "evaluate_many",
    "evaluate_sequence",
    "format_table",
    "write_csv",
    "write_json",
]
