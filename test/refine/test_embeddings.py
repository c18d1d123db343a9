"""EmbeddingRecorder: the embeddings online tracking computed, handed to each result row (real OSNet)."""

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.core.boxes import tlwh_to_xyxy
from ros2_tracker.io.mot import read_mot
from ros2_tracker.refine.embeddings import EmbeddingRecorder


@pytest.mark.data
def test_rows_take_the_embedding_of_their_detection():
    from ros2_tracker.appearance import EmbedderConfig, create_embedder
    from ros2_tracker.io.video import open_frame_source
    from ros2_tracker.offline import SequenceAppearance

    root = require_shared("data", "TUD-Campus")
    model = require_shared("models", "osnet_x0_25_msmt17.onnx")
    embedder = create_embedder(EmbedderConfig(model_path=str(model)))
    source = SequenceAppearance(open_frame_source(root), embedder)
    recorder = EmbeddingRecorder(source)
    assert recorder.row_embeddings(np.array([1]), np.array([[0.0, 0, 10, 10]])) is None  # nothing yet
    dets = read_mot(root / "det" / "det_frcnn.txt")
    returned = {}
    for frame, idx in dets.by_frame(1, 3):
        returned[frame] = recorder(frame, tlwh_to_xyxy(dets.boxes_tlwh[idx]))
    # result rows: frame 2's detections in reverse order (rows name their detection), a lost track's
    # predicted box (-1) and a row of frame 5 (never embedded)
    idx2 = np.flatnonzero(dets.frames == 2)
    dets2 = np.arange(len(idx2))[::-1]
    frames = np.concatenate([np.full(len(idx2), 2), [2, 5]])
    out = recorder.row_embeddings(frames, np.concatenate([dets2, [-1, 0]]))
    assert out.shape == (len(frames), 512)
    np.testing.assert_array_equal(out[: len(idx2)], returned[2][dets2])
    assert not out[len(idx2):].any()
    # distinct people get distinct, unit-norm embeddings
    norms = np.linalg.norm(out[: len(idx2)], axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)
    assert (out[0] @ out[1]) < 0.99


def test_through_offline_tracking_each_row_gets_its_matched_detections_embedding_and_coasting_rows_none():
    """The tracker's own match (det_indices), not a guess by overlap: a guess gave crowded rows another
    person's embedding and rows of lost tracks (report_lost_s) a passer-by's."""
    from ros2_tracker.core.tracker import Tracker, TrackerConfig
    from ros2_tracker.offline import track_mot_detections

    rng = np.random.default_rng(0)
    walk = [(f, -1, 100 + 3 * f, 100, 40, 100, 0.9) for f in range(1, 31) if not 12 <= f <= 14]
    other = [(f, -1, 115 + 3 * f, 105, 40, 100, 0.9) for f in range(1, 31)]  # overlapping its neighbour
    rows = np.array(walk + other, dtype=np.float64)
    from ros2_tracker.io.mot import MotRows

    order = np.argsort(rows[:, 0], kind="stable")
    rows = rows[order]
    dets = MotRows(rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64), rows[:, 2:6], rows[:, 6],
                   np.empty((len(rows), 0)))
    looks: dict[int, np.ndarray] = {}

    def source(frame, boxes):
        looks[frame] = rng.normal(size=(len(boxes), 8)).astype(np.float32)
        return looks[frame]

    recorder = EmbeddingRecorder(source)
    res = track_mot_detections(dets, Tracker(TrackerConfig(report_lost_s=0.5)), 10.0, features=recorder)
    out = recorder.row_embeddings(res.frames, res.det_indices)
    coasting = res.det_indices < 0
    assert coasting.any() and not out[coasting].any()
    for row in np.flatnonzero(~coasting):
        np.testing.assert_array_equal(out[row], looks[int(res.frames[row])][res.det_indices[row]])